"""Auditing a period: from the frontier of the last head before it, against every head in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agency_client import audit_verify
from agency_client.audit import download
from agency_client.audit_verify import verify_material
from tests.log.conftest import LogSceneFactory
from tests.log.helpers import fetcher, message_id
from tests.relay.conftest import FakeClock, Scene, SceneFactory


async def test_a_period_is_verified_from_the_frontier_of_the_head_before_it(
    log_factory: LogSceneFactory,
) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    clock = FakeClock(start)
    async with log_factory(clock=clock) as scene:
        school, mash = scene.agency("school"), scene.agency("mash")
        early = [scene.referral() for _ in range(3)]
        for envelope in early:
            assert (await school.submit(envelope)).status == 201
        clock.advance(hours=2)
        late = scene.referral()
        assert (await school.submit(late)).status == 201
        assert (await mash.get(f"/v1/envelopes/{message_id(late)}")).status == 200
        assert (await mash.acknowledge(late, message_id(late))).status == 201

        auditor = scene.agency("auditor")
        material = await download(
            fetcher(auditor), scene.partnership.directory(), period_from=start + timedelta(hours=1)
        )
        assert material.start == 3  # the head signed before the period covered three leaves
        assert material.frontier  # ...whose frontier anchors the period
        assert [index for index, _ in material.leaves] == [3, 4]
        report = verify_material(
            material, identity=scene.partnership["auditor"].identity, now=clock()
        )
        assert report["ok"], report["failures"]
        assert [e["message_id"] for e in report["entries"]] == [message_id(late)]
        assert report["log"]["root_verified"]

        # A frontier that does not hash to the head before the period is named.
        level, index, _ = material.frontier[0]
        material.frontier[0] = (level, index, bytes(32))
        broken = verify_material(material, identity=None, now=clock())
        assert "log-frontier" in {f["code"] for f in broken["failures"]}


async def test_the_whole_log_without_a_log_key_is_checked_from_headers_only(
    relay_factory: SceneFactory,
) -> None:
    async with relay_factory() as scene:
        assert (await scene.agency("school").submit(scene.referral())).status == 201
        material = await download(fetcher(scene.agency("auditor")), scene.partnership.directory())
        assert material.log_available is False
        report = verify_material(
            material, identity=scene.partnership["auditor"].identity, now=datetime.now(UTC)
        )
        assert report["ok"]
        assert report["messages"]["justifications_read"] == 1
        assert [w["code"] for w in report["warnings"]] == ["log-unavailable"]


async def test_parallel_verification_gives_the_same_report(
    log_scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    school = log_scene.agency("school")
    for _ in range(5):
        assert (await school.submit(log_scene.referral())).status == 201
    material = await download(
        fetcher(log_scene.agency("auditor")), log_scene.partnership.directory()
    )
    identity = log_scene.partnership["auditor"].identity
    now = datetime.now(UTC)
    serial = verify_material(material, identity=identity, now=now)
    monkeypatch.setattr(audit_verify, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(audit_verify, "_CHUNK", 2)
    parallel = verify_material(material, identity=identity, now=now, workers=2)
    assert parallel == serial
    assert serial["messages"]["justifications_read"] == 5

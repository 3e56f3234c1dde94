"""The ``exchange`` command line: root, certificates, revocations, directory, migrate."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from exchange.cli import main
from keys.certificates import Certificate, RevocationList
from keys.identity import AgencyIdentity
from schemas.encoding import b64encode


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A passphrase in the environment and a database for the relay."""
    monkeypatch.setenv("ROOT_PASS", "correct horse battery staple")
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/relay.db")
    monkeypatch.delenv("EXCHANGE_ROOT_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("EXCHANGE_ROOT_PUBLIC_KEY_FILE", raising=False)
    return {"pass": "--passphrase-env=ROOT_PASS"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        parsed = json.loads(out) if out.strip().startswith("{") else out
    except ValueError:
        parsed = out
    return code, parsed, err


def test_partnership_administration_end_to_end(
    tmp_path: Path,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root_file = tmp_path / "root.key"
    code, out, err = _run(
        capsys, "root", "init", "--out", str(root_file), env["pass"], "--kdf", "interactive"
    )
    assert code == 0, err
    assert stat.S_IMODE(root_file.stat().st_mode) == 0o600
    root_public = out["public_key"]
    monkeypatch.setenv("EXCHANGE_ROOT_PUBLIC_KEY", root_public)
    code, shown, _ = _run(capsys, "root", "show", "--root-key", str(root_file), env["pass"])
    assert shown["fingerprint"] == out["fingerprint"]

    school = AgencyIdentity.generate()
    keys_file = tmp_path / "school-keys.json"
    keys_file.write_text(
        json.dumps(
            {
                "signing_key": b64encode(school.public_keys.signing),
                "encryption_key": b64encode(school.public_keys.encryption),
            }
        )
    )
    cert_file = tmp_path / "school.json"
    code, issued, err = _run(
        capsys,
        "cert", "issue", "--root-key", str(root_file), env["pass"],
        "--agency-id", "oakfield-primary", "--name", "Oakfield Primary School",
        "--org-type", "maintained_school", "--mailbox", "dsl",
        "--public-keys", str(keys_file), "--days", "30", "--out", str(cert_file),
    )  # fmt: skip
    assert code == 0, err
    certificate = Certificate.from_json(json.loads(cert_file.read_text()))
    assert certificate.id == issued["certificate_id"]
    assert certificate.body.mailboxes == ("dsl",)

    mash = AgencyIdentity.generate()
    mash_file = tmp_path / "mash.json"
    code, _, err = _run(
        capsys,
        "cert", "issue", "--root-key", str(root_file), env["pass"],
        "--agency-id", "northbridge-front-door", "--name", "Front Door",
        "--org-type", "local_authority_childrens_services", "--mailbox", "front-door",
        "--signing-key", b64encode(mash.public_keys.signing),
        "--encryption-key", b64encode(mash.public_keys.encryption),
        "--out", str(mash_file),
    )  # fmt: skip
    assert code == 0, err

    code, added, err = _run(capsys, "directory", "add", str(cert_file), str(mash_file))
    assert code == 0, err
    assert added == {"certificates_added": 2, "given": 2}
    code, added, _ = _run(capsys, "directory", "add", str(cert_file))
    assert added["certificates_added"] == 0  # already there

    rl_file = tmp_path / "rl-1.json"
    code, revoked, err = _run(
        capsys, "cert", "revoke", "--root-key", str(root_file), env["pass"],
        "--certificate", str(cert_file), "--out", str(rl_file),
    )  # fmt: skip
    assert code == 0, err
    assert revoked["sequence"] == 1
    rl2_file = tmp_path / "rl-2.json"
    code, revoked, err = _run(
        capsys, "cert", "revoke", "--root-key", str(root_file), env["pass"],
        "--certificate", str(mash_file), "--revocations", str(rl_file), "--out", str(rl2_file),
    )  # fmt: skip
    assert code == 0, err
    assert revoked == {"sequence": 2, "revoked": 2, "out": str(rl2_file)}
    assert RevocationList.from_json(json.loads(rl2_file.read_text())).sequence == 2

    code, published, err = _run(capsys, "revocations", "publish", str(rl2_file))
    assert code == 0, err
    assert published == {"published_sequence": 2}
    # Going back is refused with one line and a non-zero status.
    code, _, err = _run(capsys, "revocations", "publish", str(rl_file))
    assert code == 1
    assert err.startswith("exchange: error: Stale revocation list")
    assert len(err.strip().splitlines()) == 1

    code, out, err = _run(capsys, "migrate")
    assert code == 0, err
    assert "revision" in out


def test_errors_are_one_line_without_traceback(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root_file = tmp_path / "root.key"
    assert main(["root", "init", "--out", str(root_file), env["pass"], "--kdf", "interactive"]) == 0
    capsys.readouterr()
    cases = [
        ["root", "init", "--out", str(root_file), env["pass"], "--kdf", "interactive"],
        ["root", "show", "--root-key", str(root_file), "--passphrase-env", "NOT_SET_ANYWHERE"],
        ["root", "show", "--root-key", str(tmp_path / "missing.key"), env["pass"]],
        ["directory", "add", str(tmp_path / "missing.json")],
        ["cert", "issue", "--root-key", str(root_file), env["pass"], "--agency-id", "x",
         "--name", "X", "--org-type", "not_an_org_type", "--mailbox", "m",
         "--signing-key", "AAAA", "--encryption-key", "AAAA", "--out", str(tmp_path / "c.json")],
    ]  # fmt: skip
    for argv in cases:
        code = main(argv)
        _, err = capsys.readouterr()
        assert code != 0, argv
        assert err.startswith("exchange: error:"), (argv, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err

    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase\n")
    code = main(["root", "show", "--root-key", str(root_file), "--passphrase-file", str(wrong)])
    _, err = capsys.readouterr()
    assert code == 1
    assert "passphrase" in err.lower()

    code = main(["serve"])  # no root pinned
    _, err = capsys.readouterr()
    assert code == 1
    assert "EXCHANGE_ROOT_PUBLIC_KEY" in err

    assert main(["no-such-command"]) == 2


def test_certificate_request_proof_is_checked(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A request whose keys were swapped after signing is refused in one line."""
    from datetime import UTC, datetime

    from keys.certificate_request import make_certificate_request

    root_file = tmp_path / "root.key"
    assert (
        _run(capsys, "root", "init", "--out", str(root_file), env["pass"], "--kdf", "interactive")[
            0
        ]
        == 0
    )
    school, impostor = AgencyIdentity.generate(), AgencyIdentity.generate()
    request = make_certificate_request(
        school,
        agency_id="oakfield-primary",
        name="Oakfield Primary School",
        org_type="maintained_school",
        public_authority=True,
        apd_in_place=True,
        mailboxes=["dsl"],
        role="agency",
        created_at=datetime(2026, 11, 24, tzinfo=UTC),
    )
    good = tmp_path / "request.json"
    good.write_text(json.dumps(request))
    code, _out, err = _run(
        capsys,
        "cert",
        "issue",
        "--root-key",
        str(root_file),
        env["pass"],
        "--request",
        str(good),
        "--out",
        str(tmp_path / "cert.json"),
    )
    assert code == 0, err
    issued = Certificate.from_json(json.loads((tmp_path / "cert.json").read_text()))
    assert issued.body.public_keys == school.public_keys
    assert issued.body.mailboxes == ("dsl",)

    swapped = dict(request, signing_key=b64encode(impostor.public_keys.signing))
    bad = tmp_path / "swapped.json"
    bad.write_text(json.dumps(swapped))
    code, _, err = _run(
        capsys,
        "cert",
        "issue",
        "--root-key",
        str(root_file),
        env["pass"],
        "--request",
        str(bad),
        "--out",
        str(tmp_path / "cert2.json"),
    )
    assert code != 0
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "cert2.json").exists()


def test_auditor_certificate_needs_no_mailbox(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root_file = tmp_path / "root.key"
    assert (
        _run(capsys, "root", "init", "--out", str(root_file), env["pass"], "--kdf", "interactive")[
            0
        ]
        == 0
    )
    auditor = AgencyIdentity.generate()
    code, _, err = _run(
        capsys,
        "cert",
        "issue",
        "--root-key",
        str(root_file),
        env["pass"],
        "--agency-id",
        "northbridge-partnership-audit",
        "--name",
        "Partnership audit",
        "--org-type",
        "partnership_oversight",
        "--role",
        "auditor",
        "--signing-key",
        b64encode(auditor.public_keys.signing),
        "--encryption-key",
        b64encode(auditor.public_keys.encryption),
        "--out",
        str(tmp_path / "auditor.json"),
    )
    assert code == 0, err
    cert = Certificate.from_json(json.loads((tmp_path / "auditor.json").read_text()))
    assert cert.body.role == "auditor"
    assert cert.body.mailboxes == ()

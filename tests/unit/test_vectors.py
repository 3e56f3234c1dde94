"""The committed known-answer vectors reproduce byte for byte, and open."""

from __future__ import annotations

import json

from keys.certificates import Certificate
from keys.directory import Directory
from keys.identity import AgencyIdentity
from keys.sealing import open_envelope, open_justification
from schemas.encoding import b64decode
from schemas.envelope import SealedEnvelope
from tests.vectors.generate import AT, VECTORS, build


def test_vectors_reproduce_exactly() -> None:
    committed = json.loads(VECTORS.read_text())
    assert build() == committed


def test_vector_opens_from_the_published_material_alone() -> None:
    vector = json.loads(VECTORS.read_text())
    certs = [Certificate.from_json(c) for c in vector["certificates"].values()]
    directory = Directory(b64decode(vector["root_public_key"]), certs)
    envelope = SealedEnvelope.from_wire_dict(vector["expected"]["wire"])
    recipient = AgencyIdentity.from_private_bytes(b64decode(vector["private_keys"]["recipient"]))
    opened = open_envelope(envelope, recipient, directory, agency_id=certs[1].body.agency_id, at=AT)
    assert opened.body_dict == vector["input"]["body"]
    auditor = AgencyIdentity.from_private_bytes(b64decode(vector["private_keys"]["auditor"]))
    _, justification = open_justification(
        envelope.header_bytes, envelope.signature, envelope.seals_bytes, auditor, directory, at=AT
    )
    assert (
        justification.model_dump(mode="json", exclude_none=True)
        == (vector["input"]["basis"]["justification"])
    )
    assert envelope.header_bytes.decode() == vector["expected"]["header_utf8"]

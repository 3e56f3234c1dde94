"""A complete fictional partnership for tests, benchmarks and partner agencies' own tests.

Everything is derived from a seed, so the same seed gives the same keys and
certificates on every run (certificate serials included). Never use these keys
for anything real: anyone with the seed has them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from keys.certificates import (
    Certificate,
    RevocationList,
    RevokedEntry,
    issue_certificate,
    issue_revocation_list,
)
from keys.directory import Directory
from keys.identity import AgencyIdentity, RootKey
from schemas.timefmt import utc

__all__ = ["STANDARD_MEMBERS", "Member", "Partnership"]


@dataclass(frozen=True, slots=True)
class Member:
    """One agency of the partnership: its keys and its certificate."""

    identity: AgencyIdentity
    certificate: Certificate

    @property
    def agency_id(self) -> str:
        """The agency id the certificate names."""
        return self.certificate.body.agency_id

    @property
    def mailbox(self) -> str:
        """The agency's first (main) mailbox."""
        return self.certificate.body.mailboxes[0]


#: (key, agency id, display name, org type, public authority, APD, mailboxes, role)
STANDARD_MEMBERS: tuple[tuple[str, str, str, str, bool, bool, tuple[str, ...], str], ...] = (
    (
        "school",
        "oakfield-primary",
        "Oakfield Primary School",
        "maintained_school",
        True,
        True,
        ("dsl",),
        "agency",
    ),
    (
        "mash",
        "northbridge-front-door",
        "Northbridge Children's Services Front Door (MASH)",
        "local_authority_childrens_services",
        True,
        True,
        ("front-door", "lado"),
        "agency",
    ),
    (
        "police",
        "northbridge-police",
        "Northbridge Police Public Protection Unit",
        "police",
        True,
        True,
        ("public-protection",),
        "agency",
    ),
    (
        "gp",
        "elm-street-surgery",
        "Elm Street Surgery",
        "gp_practice_nhs_contract",
        True,
        True,
        ("safeguarding",),
        "agency",
    ),
    (
        "clinic",
        "riverside-sexual-health",
        "Riverside Sexual Health Clinic",
        "nhs_trust",
        True,
        True,
        ("safeguarding",),
        "agency",
    ),
    (
        "health_visiting",
        "northbridge-health-visiting",
        "Northbridge Health Visiting Service",
        "nhs_trust",
        True,
        True,
        ("safeguarding",),
        "agency",
    ),
    (
        "nursery",
        "little-acorns-nursery",
        "Little Acorns Nursery",
        "private_or_voluntary_nursery",
        False,
        True,
        ("dsl",),
        "agency",
    ),
    (
        "second_school",
        "brookside-primary",
        "Brookside Primary School",
        "maintained_school",
        True,
        True,
        ("dsl",),
        "agency",
    ),
    (
        "charity",
        "harbour-family-support",
        "Harbour Family Support",
        "charity_vcs",
        False,
        True,
        ("caseworkers",),
        "agency",
    ),
    (
        "academy",
        "hillcrest-academy",
        "Hillcrest Academy",
        "academy_or_free_school",
        True,
        True,
        ("dsl",),
        "agency",
    ),
    (
        "unrelated",
        "eastfield-youth-club",
        "Eastfield Youth Club",
        "sports_club",
        False,
        False,
        ("office",),
        "agency",
    ),
    (
        "auditor",
        "northbridge-partnership-audit",
        "Northbridge Safeguarding Partnership Audit",
        "partnership_oversight",
        True,
        True,
        ("audit",),
        "auditor",
    ),
)


def _seed(seed: bytes, name: str) -> bytes:
    return hashlib.blake2b(seed, person=b"sgx-test-seed", salt=name.encode()[:16]).digest()[:32]


@dataclass
class Partnership:
    """A root, its members and a directory that pins the root."""

    root: RootKey
    members: dict[str, Member]
    issued_at: datetime
    revocations: RevocationList | None = None
    _serial: int = field(default=0, repr=False)

    @classmethod
    def create(
        cls,
        *,
        at: datetime,
        seed: bytes = b"northshire-test-partnership",
        validity: timedelta = timedelta(days=365),
        members: Iterable[tuple[str, str, str, str, bool, bool, tuple[str, ...], str]] = (
            STANDARD_MEMBERS
        ),
    ) -> Partnership:
        """Create the partnership with certificates valid from a day before ``at``."""
        at = utc(at).replace(microsecond=0)
        root = RootKey.from_seed(_seed(seed, "root"))
        partnership = cls(root=root, members={}, issued_at=at)
        for key, agency_id, name, org_type, public, apd, mailboxes, role in members:
            identity = AgencyIdentity.from_seed(_seed(seed, key))
            certificate = issue_certificate(
                root,
                agency_id=agency_id,
                name=name,
                org_type=org_type,
                public_authority=public,
                apd_in_place=apd,
                mailboxes=mailboxes,
                role=role,  # type: ignore[arg-type]
                public_keys=identity.public_keys,
                not_before=at - timedelta(days=1),
                not_after=at + validity,
                serial=hashlib.sha256(seed + key.encode()).hexdigest()[:32],
            )
            partnership.members[key] = Member(identity=identity, certificate=certificate)
        return partnership

    def __getitem__(self, key: str) -> Member:
        return self.members[key]

    @property
    def certificates(self) -> list[Certificate]:
        """Every member's certificate."""
        return [m.certificate for m in self.members.values()]

    def directory(self) -> Directory:
        """A fresh directory pinning this partnership's root."""
        return Directory(self.root.public_key, self.certificates, self.revocations)

    def revoke(self, key: str, *, at: datetime, reason: str = "key_compromise") -> RevocationList:
        """Revoke a member's certificate from ``at`` and return the new revocation list."""
        previous = list(self.revocations.body.revoked) if self.revocations else []
        sequence = (self.revocations.body.sequence + 1) if self.revocations else 1
        member = self.members[key]
        entry = RevokedEntry(
            certificate_id=member.certificate.id,
            agency_id=member.agency_id,
            revoked_at=utc(at).replace(microsecond=0),
            reason=reason,
        )
        self.revocations = issue_revocation_list(
            self.root,
            sequence=sequence,
            issued_at=utc(at).replace(microsecond=0),
            revoked=[*previous, entry],
        )
        return self.revocations

"""The SMKI CA hierarchy and an in-process SMKI repository.

Root CA -> Organisation CA (issues organisation certificates)
        -> Device CA(s)    (each issues at most ``capacity`` device certificates, then its
                            private key is destroyed in the keystore)

All CA keys live in one :class:`Keystore`, normally a PKCS#11 token. Clocks and randomness are
passed in; nothing here reads the time.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.pki import profile
from smarthydra.pki.certificates import (
    AnyCertificate,
    CaCertificate,
    CertificateError,
    DeviceCertificate,
    OrganisationCertificate,
)
from smarthydra.pki.issue import CertificateSigner, IssuanceError, ca_name, random_serial

Rng = Callable[[int], bytes]


class DeviceCaExhausted(IssuanceError):
    """The device CA has issued its quota and its key has been destroyed."""


class CertificateNotFound(LookupError):
    """No certificate in the repository matches."""


class CertificateRejected(Exception):
    """A certificate failed validation: revoked, expired, or not chained to the root."""


class IssuanceLedger(abc.ABC):
    """How many certificates each device CA has issued, kept where a restart cannot lose it."""

    @abc.abstractmethod
    def issued(self, ca: str) -> int:
        """The count recorded for the CA whose key is labelled ``ca``."""

    @abc.abstractmethod
    def reserve(self, ca: str) -> int:
        """Durably add one to the count *before* signing; return the new count."""


class MemoryLedger(IssuanceLedger):
    """Counts in memory (a hierarchy that lives as long as the process)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def issued(self, ca: str) -> int:
        return self._counts.get(ca, 0)

    def reserve(self, ca: str) -> int:
        self._counts[ca] = self.issued(ca) + 1
        return self._counts[ca]


class FileLedger(IssuanceLedger):
    """Counts in a JSON file, replaced atomically (write, fsync, rename) on every reserve.

    Reserving before signing means a crash can lose a slot but never issue beyond the cap.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise IssuanceError(f"issuance ledger {self.path} is unreadable: {exc}") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, int) for k, v in data.items()
        ):
            raise IssuanceError(f"issuance ledger {self.path} is not a map of counts")
        return data

    def issued(self, ca: str) -> int:
        return self._load().get(ca, 0)

    def reserve(self, ca: str) -> int:
        counts = self._load()
        counts[ca] = counts.get(ca, 0) + 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w") as handle:
            json.dump(counts, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        return counts[ca]


@dataclass
class DeviceCa:
    """An issuing CA for device certificates that retires itself after ``capacity`` issues.

    The count lives in ``ledger`` (durable with :class:`FileLedger`), so a restarted CA
    resumes where it stopped; a CA found retired with its key still on the token (a crash
    between the last issue and the destruction) destroys the key at once.
    """

    keystore: Keystore
    key_label: str
    certificate: CaCertificate
    capacity: int
    rng: Rng = os.urandom
    ledger: IssuanceLedger = field(default_factory=MemoryLedger)

    def __post_init__(self) -> None:
        self._destroy_if_retired()

    @property
    def issued(self) -> int:
        return self.ledger.issued(self.key_label)

    @property
    def retired(self) -> bool:
        return self.issued >= self.capacity

    def _destroy_if_retired(self) -> None:
        if self.retired and self.key_label in self.keystore:
            # The key is useless from now on; destroying it removes the risk it carries.
            self.keystore.destroy(self.key_label)

    def issue(
        self,
        *,
        subject_public_key: ec.EllipticCurvePublicKey,
        eui64: bytes,
        usage: KeyUsage,
        not_before: dt.datetime,
    ) -> DeviceCertificate:
        if self.retired:
            self._destroy_if_retired()
            raise DeviceCaExhausted(
                f"device CA {self.certificate.subject!r} issued its {self.capacity} "
                "certificates and its key has been destroyed"
            )
        signer = CertificateSigner.for_ca(self.keystore, self.key_label, self.certificate)
        self.ledger.reserve(self.key_label)
        certificate = signer.issue_device(
            subject_public_key=subject_public_key,
            eui64=eui64,
            usage=usage,
            not_before=not_before,
            serial=random_serial(self.rng),
        )
        self._destroy_if_retired()
        return certificate


def _new_device_ca(
    root_signer: CertificateSigner,
    label_prefix: str,
    generation: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    capacity: int,
    rng: Rng,
    ledger: IssuanceLedger,
) -> DeviceCa:
    keystore = root_signer.keystore
    label = f"{label_prefix}-device-ca-{generation}"
    public = keystore.generate(label, KeyUsage.DIGITAL_SIGNATURE)
    certificate = root_signer.issue_ca(
        subject_name_der=ca_name(f"D{generation:03d}", role_ou=None),
        subject_public_key=public,
        not_before=not_before,
        not_after=not_after,
        policy_oid=profile.DEVICE_POLICY_OID,
        serial=random_serial(rng),
    )
    return DeviceCa(keystore, label, certificate, capacity, rng=rng, ledger=ledger)


@dataclass
class CaHierarchy:
    """Root, organisation CA and the current device CA, keys in ``keystore``."""

    keystore: Keystore
    root: CaCertificate
    organisation_ca: CaCertificate
    device_ca: DeviceCa
    label_prefix: str
    not_after: dt.datetime
    device_ca_capacity: int
    rng: Rng = os.urandom
    retired_device_cas: list[CaCertificate] = field(default_factory=list)
    ledger: IssuanceLedger = field(default_factory=MemoryLedger)

    @classmethod
    def create(
        cls,
        keystore: Keystore,
        *,
        not_before: dt.datetime,
        not_after: dt.datetime,
        device_ca_capacity: int,
        label_prefix: str = "smki",
        root_name: str = "ROOT",
        organisation_ca_name: str = "Z1",
        rng: Rng = os.urandom,
        ledger: IssuanceLedger | None = None,
    ) -> CaHierarchy:
        if device_ca_capacity < 1:
            raise IssuanceError("a device CA must be allowed at least one certificate")
        root_label = f"{label_prefix}-root"
        keystore.generate(root_label, KeyUsage.DIGITAL_SIGNATURE)
        root_signer = CertificateSigner.self_signing(keystore, root_label, ca_name(root_name))
        root = root_signer.issue_ca(
            subject_name_der=root_signer.name_der,
            subject_public_key=keystore.public_key(root_label),
            not_before=not_before,
            not_after=not_after,
            path_length=1,
            serial=random_serial(rng),
        )
        org_label = f"{label_prefix}-organisation-ca"
        org_public = keystore.generate(org_label, KeyUsage.DIGITAL_SIGNATURE)
        organisation_ca = root_signer.issue_ca(
            subject_name_der=ca_name(organisation_ca_name),
            subject_public_key=org_public,
            not_before=not_before,
            not_after=not_after,
            serial=random_serial(rng),
        )
        ledger = ledger or MemoryLedger()
        device_ca = _new_device_ca(
            root_signer, label_prefix, 1, not_before, not_after, device_ca_capacity, rng, ledger
        )
        return cls(
            keystore,
            root,
            organisation_ca,
            device_ca,
            label_prefix=label_prefix,
            not_after=not_after,
            device_ca_capacity=device_ca_capacity,
            rng=rng,
            ledger=ledger,
        )

    # --- persistence: certificates and labels in a JSON file, counts in the ledger ----------

    def save(self, path: Path) -> None:
        """Write what a restart needs (no key material: the keys stay in the keystore)."""
        state = {
            "label_prefix": self.label_prefix,
            "not_after": self.not_after.isoformat(),
            "device_ca_capacity": self.device_ca_capacity,
            "root": self.root.der.hex(),
            "organisation_ca": self.organisation_ca.der.hex(),
            "device_ca": {
                "label": self.device_ca.key_label,
                "certificate": self.device_ca.certificate.der.hex(),
            },
            "retired_device_cas": [c.der.hex() for c in self.retired_device_cas],
        }
        path = Path(path)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(state, indent=1))
        os.replace(temporary, path)

    @classmethod
    def load(
        cls,
        keystore: Keystore,
        path: Path,
        *,
        ledger: IssuanceLedger | None = None,
        rng: Rng = os.urandom,
    ) -> CaHierarchy:
        """Resume a hierarchy saved with :meth:`save`; device CA counts come from ``ledger``."""
        from smarthydra.pki.certificates import parse_certificate

        try:
            state = json.loads(Path(path).read_text())

            def ca(hex_der: str) -> CaCertificate:
                certificate = parse_certificate(bytes.fromhex(hex_der))
                if not isinstance(certificate, CaCertificate):
                    raise IssuanceError("the saved state holds a non-CA certificate")
                return certificate

            ledger = ledger or MemoryLedger()
            capacity = int(state["device_ca_capacity"])
            device_ca = DeviceCa(
                keystore,
                str(state["device_ca"]["label"]),
                ca(state["device_ca"]["certificate"]),
                capacity,
                rng=rng,
                ledger=ledger,
            )
            return cls(
                keystore,
                ca(state["root"]),
                ca(state["organisation_ca"]),
                device_ca,
                label_prefix=str(state["label_prefix"]),
                not_after=dt.datetime.fromisoformat(state["not_after"]),
                device_ca_capacity=capacity,
                rng=rng,
                retired_device_cas=[ca(h) for h in state["retired_device_cas"]],
                ledger=ledger,
            )
        except (OSError, ValueError, KeyError, TypeError, CertificateError) as exc:
            raise IssuanceError(f"cannot resume the CA hierarchy from {path}: {exc}") from None

    def _root_signer(self) -> CertificateSigner:
        return CertificateSigner.for_ca(self.keystore, f"{self.label_prefix}-root", self.root)

    def root_signer(self) -> CertificateSigner:
        return self._root_signer()

    def certify_ca(
        self,
        *,
        subject_name_der: bytes,
        subject_public_key: ec.EllipticCurvePublicKey,
        not_before: dt.datetime,
        not_after: dt.datetime | None = None,
    ) -> CaCertificate:
        """A CA certificate from this root for another CA's key: the link certificate of a
        normal root rollover (old root certifies the new root), or a cross-certificate from
        an independent root (the dual-certification defence)."""
        return self._root_signer().issue_ca(
            subject_name_der=subject_name_der,
            subject_public_key=subject_public_key,
            not_before=not_before,
            not_after=not_after or self.not_after,
            path_length=1,
            serial=random_serial(self.rng),
        )

    @property
    def ca_certificates(self) -> list[CaCertificate]:
        return [
            self.root,
            self.organisation_ca,
            *self.retired_device_cas,
            self.device_ca.certificate,
        ]

    def organisation_signer(self) -> CertificateSigner:
        return CertificateSigner.for_ca(
            self.keystore, f"{self.label_prefix}-organisation-ca", self.organisation_ca
        )

    def issue_organisation(
        self,
        *,
        subject_public_key: ec.EllipticCurvePublicKey,
        role: int,
        eui64: bytes,
        usage: KeyUsage,
        not_before: dt.datetime,
        not_after: dt.datetime,
        common_name: str | None = None,
    ) -> OrganisationCertificate:
        return self.organisation_signer().issue_organisation(
            subject_public_key=subject_public_key,
            role=role,
            eui64=eui64,
            usage=usage,
            not_before=not_before,
            not_after=not_after,
            common_name=common_name,
            serial=random_serial(self.rng),
        )

    def issue_device(
        self,
        *,
        subject_public_key: ec.EllipticCurvePublicKey,
        eui64: bytes,
        usage: KeyUsage,
        not_before: dt.datetime,
    ) -> DeviceCertificate:
        """Issue from the current device CA, rolling to a new one when it has retired."""
        if self.device_ca.retired:
            generation = len(self.retired_device_cas) + 2
            self.retired_device_cas.append(self.device_ca.certificate)
            self.device_ca = _new_device_ca(
                self._root_signer(),
                self.label_prefix,
                generation,
                not_before,
                self.not_after,
                self.device_ca_capacity,
                self.rng,
                self.ledger,
            )
        return self.device_ca.issue(
            subject_public_key=subject_public_key, eui64=eui64, usage=usage, not_before=not_before
        )


@dataclass(frozen=True)
class Revocation:
    serial: int
    revoked_at: dt.datetime


class SmkiRepository:
    """Published certificates, queried by serial, EUI-64 and role; revocation of org certs."""

    def __init__(self, trust_anchors: Iterable[CaCertificate] = ()) -> None:
        self._by_serial: dict[int, AnyCertificate] = {}
        self._revoked: dict[int, Revocation] = {}
        self._cas: dict[bytes, CaCertificate] = {}
        for anchor in trust_anchors:
            self.publish(anchor)

    def publish(self, certificate: AnyCertificate) -> None:
        existing = self._by_serial.get(certificate.serial)
        if existing is not None and existing.der != certificate.der:
            raise CertificateRejected(f"serial {certificate.serial:X} is already published")
        self._by_serial[certificate.serial] = certificate
        if isinstance(certificate, CaCertificate):
            self._cas[certificate.subject_key_id] = certificate

    def by_serial(self, serial: int) -> AnyCertificate:
        try:
            return self._by_serial[serial]
        except KeyError:
            raise CertificateNotFound(f"no certificate with serial {serial:X}") from None

    def by_eui64(
        self, eui64: bytes, *, usage: KeyUsage | None = None, role: int | None = None
    ) -> list[OrganisationCertificate | DeviceCertificate]:
        found: list[OrganisationCertificate | DeviceCertificate] = []
        for certificate in self._by_serial.values():
            if not isinstance(certificate, OrganisationCertificate | DeviceCertificate):
                continue
            if certificate.eui64 != eui64:
                continue
            if usage is not None and certificate.usage is not usage:
                continue
            if role is not None and (
                not isinstance(certificate, OrganisationCertificate) or certificate.role != role
            ):
                continue
            found.append(certificate)
        return sorted(found, key=lambda c: (c.not_before, c.serial))

    def by_role(self, role: int) -> list[OrganisationCertificate]:
        return sorted(
            (
                c
                for c in self._by_serial.values()
                if isinstance(c, OrganisationCertificate) and c.role == role
            ),
            key=lambda c: (c.eui64, c.not_before, c.serial),
        )

    def revoke(self, serial: int, revoked_at: dt.datetime) -> None:
        certificate = self.by_serial(serial)
        if not isinstance(certificate, OrganisationCertificate):
            raise CertificateRejected(
                "only organisation certificates are revoked; devices are replaced instead"
            )
        self._revoked.setdefault(serial, Revocation(serial, revoked_at))

    def is_revoked(self, serial: int) -> bool:
        return serial in self._revoked

    def revocations(self) -> list[Revocation]:
        return sorted(self._revoked.values(), key=lambda r: (r.revoked_at, r.serial))

    def validate(self, certificate: AnyCertificate, at: dt.datetime) -> None:
        """Raise :class:`CertificateRejected` unless valid at ``at`` and chained to a root."""
        if certificate.serial in self._revoked:
            raise CertificateRejected(f"certificate {certificate.serial:X} has been revoked")
        current: AnyCertificate = certificate
        for _ in range(8):  # SMKI chains are at most three long
            if not current.not_before <= at <= current.not_after:
                raise CertificateRejected(
                    f"certificate {current.serial:X} is not valid at {at.isoformat()}"
                )
            if isinstance(current, CaCertificate) and current.self_signed:
                if current.subject_key_id not in self._cas or not current.verify_signature(
                    current.public_key
                ):
                    raise CertificateRejected("the chain ends at an unknown root")
                return
            issuer = self._cas.get(current.authority_key_id or b"")
            if issuer is None:
                raise CertificateRejected(
                    f"no CA certificate for the issuer of {current.serial:X} in the repository"
                )
            if not current.verify_signature(issuer.public_key):
                raise CertificateRejected(f"certificate {current.serial:X} has a bad signature")
            current = issuer
        raise CertificateRejected("certificate chain too long")

    def to_json(self) -> str:
        """Every published certificate and revocation (for a repository that restarts)."""
        return json.dumps(
            {
                "certificates": [c.der.hex() for c in self._by_serial.values()],
                "revocations": [
                    {"serial": r.serial, "revoked_at": r.revoked_at.isoformat()}
                    for r in self.revocations()
                ],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> SmkiRepository:
        from smarthydra.pki.certificates import parse_certificate

        try:
            state = json.loads(text)
            repository = cls()
            for hex_der in state["certificates"]:
                repository.publish(parse_certificate(bytes.fromhex(hex_der)))
            for entry in state["revocations"]:
                repository.revoke(
                    int(entry["serial"]), dt.datetime.fromisoformat(entry["revoked_at"])
                )
        except (ValueError, KeyError, TypeError, CertificateError, CertificateNotFound) as exc:
            raise CertificateRejected(f"unreadable repository state: {exc}") from None
        return repository

    def certificates(self) -> list[AnyCertificate]:
        return sorted(self._by_serial.values(), key=lambda c: (c.not_before, c.serial))

    def crl(
        self, signer: CertificateSigner, this_update: dt.datetime, next_update: dt.datetime
    ) -> bytes:
        """An X.509 v2 CRL of every revocation, signed through ``signer``'s keystore."""

        def time(when: dt.datetime) -> asn1_x509.Time:
            kind = "utc_time" if when.year < 2050 else "general_time"
            return asn1_x509.Time(name=kind, value=when.astimezone(dt.UTC).replace(microsecond=0))

        revoked = [
            {"user_certificate": r.serial, "revocation_date": time(r.revoked_at)}
            for r in self.revocations()
        ]
        tbs = asn1_crl.TbsCertList(
            {
                "version": "v2",
                "signature": {"algorithm": "sha256_ecdsa"},
                "issuer": asn1_x509.Name.load(signer.name_der),
                "this_update": time(this_update),
                "next_update": time(next_update),
                "revoked_certificates": revoked or None,
                "crl_extensions": [
                    {
                        "extn_id": "authority_key_identifier",
                        "critical": False,
                        "extn_value": {"key_identifier": signer.key_identifier},
                    },
                    {"extn_id": "crl_number", "critical": False, "extn_value": len(revoked)},
                ],
            }
        )
        signature = signer.keystore.sign(signer.key_label, tbs.dump())
        return bytes(
            asn1_crl.CertificateList(
                {
                    "tbs_cert_list": tbs,
                    "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                    "signature": primitives.raw_to_der_signature(signature),
                }
            ).dump()
        )


def parse_crl(der: bytes, issuer: CaCertificate) -> set[int]:
    """The revoked serials in a CRL signed by ``issuer``; :class:`CertificateError` otherwise."""
    try:
        certificate_list = asn1_crl.CertificateList.load(der, strict=True)
        tbs = certificate_list["tbs_cert_list"]
        raw = primitives.der_to_raw_signature(bytes(certificate_list["signature"].native))
        if tbs["issuer"].dump() != issuer.subject_der:
            raise CertificateError("the CRL was not issued by this CA")
        if not primitives.ecdsa_verify(issuer.public_key, tbs.dump(), raw):
            raise CertificateError("the CRL signature does not verify")
        return {int(entry["user_certificate"].native) for entry in tbs["revoked_certificates"]}
    except CertificateError:
        raise
    except (ValueError, TypeError, LookupError, AttributeError, OverflowError) as exc:
        raise CertificateError(f"malformed CRL: {exc}") from None

"""The RTDS test keystore and a checker for every message in the Reference Test Data Set.

``rtds-keystore/`` holds ``<EUI-64>-ds.pem``, ``-ka.pem`` and ``-pp-ka.pem`` certificates and
``.key`` private keys where they were published. Who is who comes from the certificates: an
organisation certificate names its role in ``OU`` (``04`` is the Access Control Broker, which
MACs every command), a device certificate has an empty subject. Device private keys are not
published, so a device-side ECDH is always done from the other party's private key; where
neither private key exists the check is reported as skipped.

This module reads files (keys and message hex); the checks themselves go through the pure
functions in :mod:`smarthydra.gbcs.security`.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smarthydra.crypto import primitives
from smarthydra.gbcs import security
from smarthydra.gbcs.envelope import CraFlag, GbcsMessage, decode_message
from smarthydra.gbcs.errors import DecryptionFailed, GbcsDecodeError, GbcsError
from smarthydra.gbcs.sensitive import find_protected_blocks

ACB_ROLE = "04"


class KeyKind(enum.Enum):
    DS = "ds"
    KA = "ka"
    PP_KA = "pp-ka"


class RtdsKeystoreError(GbcsError):
    """The keystore directory is missing or holds an unreadable key."""


@dataclass
class PartyKeys:
    """The keys of one EUI-64 (organisation or device)."""

    eui: bytes
    role: str | None = None  # OU of an organisation certificate; None for devices
    is_device: bool = False
    public: dict[KeyKind, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    private: dict[KeyKind, ec.EllipticCurvePrivateKey] = field(default_factory=dict)


@dataclass
class RtdsKeystore:
    parties: dict[bytes, PartyKeys]

    @property
    def access_control_broker(self) -> bytes | None:
        """The EUI whose certificate carries the ACB role (OU=04) and a KA private key."""
        for eui, party in sorted(self.parties.items()):
            if party.role == ACB_ROLE and KeyKind.KA in party.private:
                return eui
        return None

    def public_key(self, eui: bytes, kind: KeyKind) -> ec.EllipticCurvePublicKey | None:
        party = self.parties.get(eui)
        return None if party is None else party.public.get(kind)

    def shared_secret(self, a: bytes, b: bytes, kind: KeyKind = KeyKind.KA) -> bytes | None:
        """Z between the KA keys of ``a`` and ``b``, or None if no private half is known."""
        pa, pb = self.parties.get(a), self.parties.get(b)
        if pa is None or pb is None:
            return None
        if kind in pa.private and kind in pb.public:
            return primitives.ecdh(pa.private[kind], pb.public[kind])
        if kind in pb.private and kind in pa.public:
            return primitives.ecdh(pb.private[kind], pa.public[kind])
        return None

    @classmethod
    def load(cls, directory: Path) -> RtdsKeystore:
        if not directory.is_dir():
            raise RtdsKeystoreError(f"keystore directory not found: {directory}")
        parties: dict[bytes, PartyKeys] = {}
        for path in sorted(directory.iterdir()):
            parsed = _parse_key_file_name(path.name)
            if parsed is None:
                continue
            eui, kind, suffix = parsed
            party = parties.setdefault(eui, PartyKeys(eui))
            try:
                data = path.read_bytes()
                if suffix == "pem" and b"BEGIN PUBLIC KEY" in data:
                    loaded = serialization.load_pem_public_key(data)
                    if not isinstance(loaded, ec.EllipticCurvePublicKey):
                        raise RtdsKeystoreError(f"{path.name}: not an EC public key")
                    party.public[kind] = loaded
                elif suffix == "pem":
                    cert = x509.load_pem_x509_certificate(data)
                    key = cert.public_key()
                    if not isinstance(key, ec.EllipticCurvePublicKey):
                        raise RtdsKeystoreError(f"{path.name}: not an EC certificate")
                    party.public[kind] = key
                    ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
                    if ous:
                        value = ous[0].value
                        party.role = value if isinstance(value, str) else value.decode()
                    elif len(cert.subject) == 0:
                        party.is_device = True
                else:
                    private = serialization.load_pem_private_key(data, password=None)
                    if not isinstance(private, ec.EllipticCurvePrivateKey):
                        raise RtdsKeystoreError(f"{path.name}: not an EC private key")
                    party.private[kind] = private
                    party.public.setdefault(kind, private.public_key())
            except (ValueError, TypeError) as exc:
                raise RtdsKeystoreError(
                    f"{path.name}: unreadable key or certificate: {exc}"
                ) from None
        return cls(parties)


def _parse_key_file_name(name: str) -> tuple[bytes, KeyKind, str] | None:
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix not in ("pem", "key"):
        return None
    eui_hex, _, kind_text = stem.partition("-")
    try:
        eui = bytes.fromhex(eui_hex)
        kind = KeyKind(kind_text)
    except ValueError:
        return None
    if len(eui) != 8:
        return None
    return eui, kind, suffix


# --- Checking messages ----------------------------------------------------------------------


class Outcome(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    SKIPPED = "skipped"
    UNSIGNED = "unsigned"
    NOT_APPLICABLE = "n/a"


@dataclass(frozen=True)
class MessageCheck:
    """What checking one RTDS file found."""

    name: str
    parsed: bool
    error: str | None = None
    mac: Outcome = Outcome.NOT_APPLICABLE
    signature: Outcome = Outcome.NOT_APPLICABLE
    protected_blocks: int = 0
    decrypted_blocks: int = 0
    decryption_skipped: bool = False
    decrypted: tuple[bytes, ...] = ()

    @property
    def failed(self) -> bool:
        return (
            not self.parsed
            or self.mac is Outcome.INVALID
            or self.signature is Outcome.INVALID
            or (not self.decryption_skipped and self.decrypted_blocks < self.protected_blocks)
        )


def mac_secret(keystore: RtdsKeystore, message: GbcsMessage) -> bytes | None:
    """Z for the MAC: ACB x device for a remote party's command, originator x recipient otherwise.

    A HAN-only command sent by a device (PCS01/PCS02: prepayment interface to gas meter) is
    MAC'd by the originating device, not by the ACB; with no device private key published its
    MAC cannot be checked and is reported as skipped.
    """
    originator = keystore.parties.get(message.originator)
    from_device = originator is not None and originator.is_device
    if message.cra_flag is CraFlag.COMMAND and not from_device:
        acb = keystore.access_control_broker
        return None if acb is None else keystore.shared_secret(acb, message.recipient)
    return keystore.shared_secret(message.originator, message.recipient)


def check_message(name: str, data: bytes, keystore: RtdsKeystore) -> MessageCheck:
    """Parse one message and check its MAC, signature and sensitive payloads."""
    try:
        message = decode_message(data)
    except GbcsDecodeError as exc:
        return MessageCheck(name, parsed=False, error=f"{type(exc).__name__}: {exc}")
    mac = Outcome.NOT_APPLICABLE
    if message.is_macd:
        z = mac_secret(keystore, message)
        if z is None:
            mac = Outcome.SKIPPED
        else:
            ok = security.verify_mac(security.message_mac_key(z, message), message)
            mac = Outcome.VALID if ok else Outcome.INVALID
    signature = Outcome.UNSIGNED
    if message.general_signing.is_signed:
        key = keystore.public_key(message.originator, KeyKind.DS)
        if key is None:
            signature = Outcome.SKIPPED
        else:
            ok = security.verify_signature(message, key)
            signature = Outcome.VALID if ok else Outcome.INVALID
    try:
        blocks = (
            find_protected_blocks(message.payload, alert=message.cra_flag is CraFlag.ALERT)
            if message.cra_flag is not CraFlag.COMMAND
            else []
        )
    except GbcsDecodeError as exc:
        return MessageCheck(
            name,
            parsed=False,
            error=f"payload: {type(exc).__name__}: {exc}",
            mac=mac,
            signature=signature,
        )
    decrypted: list[bytes] = []
    skipped = False
    if blocks:
        originator, counter, party = security.encryption_parameters(message)
        z = keystore.shared_secret(originator, party)
        if z is None:
            skipped = True
        else:
            payload_key = security.encryption_key(z, originator, counter, party)
            for block in blocks:
                with contextlib.suppress(DecryptionFailed):
                    decrypted.append(security.decrypt_payload(payload_key, originator, block))
    return MessageCheck(
        name,
        parsed=True,
        mac=mac,
        signature=signature,
        protected_blocks=len(blocks),
        decrypted_blocks=len(decrypted),
        decryption_skipped=skipped,
        decrypted=tuple(decrypted),
    )


def rtds_message_files(directory: Path) -> list[Path]:
    """Every ``*.HEX`` message file below ``directory`` (``.../gbcs`` or ``.../rtds-4.5.0``)."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() == ".hex")


def default_keystore_dir(directory: Path) -> Path:
    """DIR/rtds-keystore, or the nearest one beside a parent (DIR may be one use case)."""
    for folder in [directory, *list(directory.resolve().parents)[:3]]:
        candidate = folder / "rtds-keystore"
        if candidate.is_dir():
            return candidate
    return directory / "rtds-keystore"


def read_hex_file(path: Path) -> bytes:
    text = path.read_text(errors="replace")
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise RtdsKeystoreError(f"{path.name}: not a hex file") from None


@dataclass
class RtdsSummary:
    mac_valid: int = 0
    mac_invalid: int = 0
    mac_skipped: int = 0
    signature_valid: int = 0
    signature_invalid: int = 0
    signature_unsigned: int = 0
    signature_skipped: int = 0
    decrypted_ok: int = 0
    decrypted_failed: int = 0
    decryption_skipped: int = 0
    files: int = 0
    parsed: int = 0
    failures: list[str] = field(default_factory=list)
    checks: list[MessageCheck] = field(default_factory=list)

    def add(self, check: MessageCheck) -> None:
        self.files += 1
        self.checks.append(check)
        if check.parsed:
            self.parsed += 1
        if check.mac is Outcome.VALID:
            self.mac_valid += 1
        elif check.mac is Outcome.INVALID:
            self.mac_invalid += 1
        elif check.mac is Outcome.SKIPPED:
            self.mac_skipped += 1
        if check.signature is Outcome.VALID:
            self.signature_valid += 1
        elif check.signature is Outcome.INVALID:
            self.signature_invalid += 1
        elif check.signature is Outcome.SKIPPED:
            self.signature_skipped += 1
        elif check.parsed:
            self.signature_unsigned += 1
        if check.protected_blocks:
            if check.decryption_skipped:
                self.decryption_skipped += 1
            elif check.decrypted_blocks == check.protected_blocks:
                self.decrypted_ok += 1
            else:
                self.decrypted_failed += 1
        if check.failed:
            self.failures.append(check.name)

    def to_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "parsed": self.parsed,
            "mac": {
                "valid": self.mac_valid,
                "invalid": self.mac_invalid,
                "skipped": self.mac_skipped,
            },
            "signature": {
                "valid": self.signature_valid,
                "invalid": self.signature_invalid,
                "unsigned": self.signature_unsigned,
                "skipped": self.signature_skipped,
            },
            "decrypted": {
                "ok": self.decrypted_ok,
                "failed": self.decrypted_failed,
                "skipped": self.decryption_skipped,
            },
            "failures": sorted(self.failures),
        }


def verify_rtds(
    files: list[Path],
    keystore: RtdsKeystore,
    progress: Callable[[Path], None] | None = None,
) -> RtdsSummary:
    summary = RtdsSummary()
    for path in files:
        try:
            data = read_hex_file(path)
        except RtdsKeystoreError as exc:
            summary.add(MessageCheck(path.name, parsed=False, error=str(exc)))
        else:
            summary.add(check_message(path.name, data, keystore))
        if progress is not None:
            progress(path)
    return summary


def iter_checks(directory: Path, keystore: RtdsKeystore) -> Iterator[MessageCheck]:
    for path in rtds_message_files(directory):
        yield check_message(path.name, read_hex_file(path), keystore)

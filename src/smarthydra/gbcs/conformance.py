"""Conformance against the RTDS: parse, round-trip (envelope and payload), MAC, signature,
decryption and decoding of the decrypted content, for every message file.

The checks on one message are pure (bytes and a keystore in, a :class:`ConformanceCheck` out);
only :func:`run_conformance` reads files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from smarthydra.gbcs import security
from smarthydra.gbcs.axdr import decode_data_exact
from smarthydra.gbcs.der import decode_der, is_der
from smarthydra.gbcs.envelope import CraFlag, GbcsMessage, decode_message
from smarthydra.gbcs.errors import BadField, GbcsDecodeError, GbcsError
from smarthydra.gbcs.gbz import EncryptedZcl, decode_gbz, decode_zcl_body, is_gbz
from smarthydra.gbcs.gbz_clusters import decode_cluster_command
from smarthydra.gbcs.rtds import (
    MessageCheck,
    Outcome,
    RtdsKeystore,
    RtdsKeystoreError,
    check_message,
    mac_secret,
    read_hex_file,
)
from smarthydra.gbcs.sensitive import protected_blocks
from smarthydra.gbcs.usecase import MessageKeys, decode_use_case_message, rebuild
from smarthydra.gbcs.xdlms import decode_xdlms

XDLMS_TAGS = frozenset({0xD9, 0xDA, 0x0F})


def payload_codec(message: GbcsMessage) -> str:
    """Which codec the payload belongs to: ``xdlms``, ``gbz``, ``der`` or ``unknown``."""
    payload = message.payload
    if payload and payload[0] in XDLMS_TAGS:
        return "xdlms"
    if is_gbz(payload):
        return "gbz"
    if is_der(payload):
        return "der"
    return "unknown"


def payload_round_trip(message: GbcsMessage) -> bytes:
    """Decode the payload with its codec and re-encode it (raises GbcsDecodeError)."""
    payload = message.payload
    kind = payload_codec(message)
    if kind == "xdlms":
        return decode_xdlms(payload).encode()
    if kind == "gbz":
        return decode_gbz(payload, alert=message.cra_flag is CraFlag.ALERT).encode()
    if kind == "der":
        return decode_der(payload).encode()
    raise BadField(f"no codec for a payload starting 0x{payload[:1].hex()}")


def _decrypted_decodes(message: GbcsMessage, plaintexts: tuple[bytes, ...]) -> str | None:
    """None when every decrypted block decodes and re-encodes exactly, else the reason."""
    if payload_codec(message) == "gbz":
        gbz = decode_gbz(message.payload, alert=message.cra_flag is CraFlag.ALERT)
        encrypted = [c for c in gbz.components if isinstance(c.body, EncryptedZcl)]
        for component, plaintext in zip(encrypted, plaintexts, strict=True):
            header = component.zcl
            typed = decode_cluster_command(
                component.cluster_id, header.frame_control, header.command_id, plaintext
            )
            body = (
                typed
                if typed is not None
                else decode_zcl_body(header.frame_control, header.command_id, plaintext)
            )
            if body.encode() != plaintext:
                return "decrypted ZCL payload does not re-encode"
        return None
    for plaintext in plaintexts:
        if decode_data_exact(plaintext).encode() != plaintext:
            return "decrypted A-XDR data does not re-encode"
    return None


@dataclass(frozen=True)
class ConformanceCheck:
    name: str
    parsed: bool
    roundtrip: bool
    check: MessageCheck | None
    decrypted: bool  # every sensitive block decrypted and its content decoded
    failure: str | None
    rebuilt: bool = False  # built again from its use-case parameters, byte for byte

    @property
    def has_sensitive(self) -> bool:
        return self.check is not None and self.check.protected_blocks > 0


def check_conformance(name: str, data: bytes, keystore: RtdsKeystore) -> ConformanceCheck:
    try:
        message = decode_message(data)
    except GbcsDecodeError as exc:
        return ConformanceCheck(name, False, False, None, False, f"parse: {exc}")
    problems: list[str] = []
    roundtrip = True
    if message.encode() != data:
        roundtrip = False
        problems.append("envelope re-encoding differs")
    try:
        if payload_round_trip(message) != message.payload:
            roundtrip = False
            problems.append(f"{payload_codec(message)} payload re-encoding differs")
    except GbcsDecodeError as exc:
        roundtrip = False
        problems.append(f"{payload_codec(message)} payload: {type(exc).__name__}: {exc}")
    check = check_message(name, data, keystore)
    if not check.parsed:
        problems.append(check.error or "payload did not parse")
    if check.mac is Outcome.INVALID:
        problems.append("MAC does not verify")
    if check.signature is Outcome.INVALID:
        problems.append("signature does not verify")
    decrypted = False
    if check.protected_blocks:
        if check.decryption_skipped:
            problems.append("sensitive payload: no key to decrypt")
        elif check.decrypted_blocks < check.protected_blocks:
            problems.append(
                f"sensitive payload: {check.decrypted_blocks}/{check.protected_blocks} decrypted"
            )
        else:
            try:
                reason = _decrypted_decodes(message, check.decrypted)
            except (GbcsDecodeError, ValueError) as exc:
                reason = f"decrypted content: {type(exc).__name__}: {exc}"
            if reason is None:
                decrypted = True
            else:
                problems.append(reason)
    rebuilt: bool | None = False
    if roundtrip:
        try:
            rebuilt = _rebuilds(data, message, keystore)
        except GbcsError as exc:
            problems.append(f"rebuild from parameters: {type(exc).__name__}: {exc}")
        else:
            if rebuilt is False:
                problems.append("rebuilt from its parameters, the bytes differ")
    failure = "; ".join(problems) if problems else None
    return ConformanceCheck(name, True, roundtrip, check, decrypted, failure, rebuilt is True)


def _rebuilds(data: bytes, message: GbcsMessage, keystore: RtdsKeystore) -> bool | None:
    """Build the message again from its use-case parameters (decoded payload, header fields,
    decrypted sensitive values re-encrypted); None when a key it needs is not published."""
    gs = message.general_signing
    enc_originator, _, party = security.encryption_parameters(gs)
    encryption_z = keystore.shared_secret(enc_originator, party)
    decoded = decode_use_case_message(data, encryption_z=encryption_z)
    mac_z = mac_secret(keystore, message) if message.is_macd else None
    if message.is_macd and mac_z is None:
        return None
    if decoded.params.sensitive == () and protected_blocks(decoded.payload):
        return None  # sensitive content this keystore cannot decrypt
    keys = MessageKeys(mac_z=mac_z, encryption_z=encryption_z)
    return rebuild(decoded, keys, keep_signature=True) == data


@dataclass
class ConformanceSummary:
    files: int = 0
    parsed: int = 0
    roundtrip: int = 0
    mac_valid: int = 0
    mac_checked: int = 0
    mac_skipped: int = 0
    signature_valid: int = 0
    signature_checked: int = 0
    sensitive: int = 0
    decrypted: int = 0
    rebuilt: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def add(self, result: ConformanceCheck) -> None:
        self.files += 1
        self.parsed += result.parsed
        self.roundtrip += result.roundtrip
        check = result.check
        if check is not None:
            if check.mac in (Outcome.VALID, Outcome.INVALID):
                self.mac_checked += 1
                self.mac_valid += check.mac is Outcome.VALID
            self.mac_skipped += check.mac is Outcome.SKIPPED
            if check.signature in (Outcome.VALID, Outcome.INVALID):
                self.signature_checked += 1
                self.signature_valid += check.signature is Outcome.VALID
        if result.has_sensitive:
            self.sensitive += 1
            self.decrypted += result.decrypted
        self.rebuilt += result.rebuilt
        if result.failure is not None:
            self.failures[result.name] = result.failure

    def to_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "parsed": self.parsed,
            "roundtrip": self.roundtrip,
            "mac_valid": self.mac_valid,
            "mac_checked": self.mac_checked,
            "mac_skipped": self.mac_skipped,
            "signature_valid": self.signature_valid,
            "signature_checked": self.signature_checked,
            "sensitive": self.sensitive,
            "decrypted": self.decrypted,
            "rebuilt": self.rebuilt,
            "failures": dict(sorted(self.failures.items())),
        }


def run_conformance(
    files: list[Path],
    keystore: RtdsKeystore,
    progress: Callable[[Path], None] | None = None,
) -> ConformanceSummary:
    summary = ConformanceSummary()
    for path in files:
        try:
            data = read_hex_file(path)
        except RtdsKeystoreError as exc:
            summary.add(ConformanceCheck(path.name, False, False, None, False, str(exc)))
        else:
            summary.add(check_conformance(path.name, data, keystore))
        if progress is not None:
            progress(path)
    return summary

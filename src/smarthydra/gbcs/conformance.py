"""Conformance against the RTDS: parse, round-trip (envelope and payload), MAC, signature,
decryption and decoding of the decrypted content, for every message file.

The checks on one message are pure (bytes and a keystore in, a :class:`ConformanceCheck` out);
only :func:`run_conformance` reads files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from smarthydra.gbcs.axdr import decode_data_exact
from smarthydra.gbcs.der import decode_der, is_der
from smarthydra.gbcs.envelope import CraFlag, GbcsMessage, decode_message
from smarthydra.gbcs.errors import GbcsDecodeError
from smarthydra.gbcs.gbz import EncryptedZcl, decode_gbz, decode_zcl_body, is_gbz
from smarthydra.gbcs.rtds import (
    MessageCheck,
    Outcome,
    RtdsKeystore,
    RtdsKeystoreError,
    check_message,
    read_hex_file,
)
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
    raise GbcsDecodeError(f"no codec for a payload starting 0x{payload[:1].hex()}")


def _decrypted_decodes(message: GbcsMessage, plaintexts: tuple[bytes, ...]) -> str | None:
    """None when every decrypted block decodes and re-encodes exactly, else the reason."""
    if payload_codec(message) == "gbz":
        gbz = decode_gbz(message.payload, alert=message.cra_flag is CraFlag.ALERT)
        headers = [c.zcl for c in gbz.components if isinstance(c.body, EncryptedZcl)]
        for header, plaintext in zip(headers, plaintexts, strict=True):
            body = decode_zcl_body(header.frame_control, header.command_id, plaintext)
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
    failure = "; ".join(problems) if problems else None
    return ConformanceCheck(name, True, roundtrip, check, decrypted, failure)


@dataclass
class ConformanceSummary:
    files: int = 0
    parsed: int = 0
    roundtrip: int = 0
    mac_valid: int = 0
    mac_checked: int = 0
    signature_valid: int = 0
    signature_checked: int = 0
    sensitive: int = 0
    decrypted: int = 0
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
            if check.signature in (Outcome.VALID, Outcome.INVALID):
                self.signature_checked += 1
                self.signature_valid += check.signature is Outcome.VALID
        if result.has_sensitive:
            self.sensitive += 1
            self.decrypted += result.decrypted
        if result.failure is not None:
            self.failures[result.name] = result.failure

    def to_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "parsed": self.parsed,
            "roundtrip": self.roundtrip,
            "mac_valid": self.mac_valid,
            "mac_checked": self.mac_checked,
            "signature_valid": self.signature_valid,
            "signature_checked": self.signature_checked,
            "sensitive": self.sensitive,
            "decrypted": self.decrypted,
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

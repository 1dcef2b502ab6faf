"""GBCS: messages MAC-checked and signature-checked per second on one core, over the RTDS.

Each rate includes framing and parsing the message. Z for each (ACB or recipient, device)
pair is computed once up front, as a device or DCC would keep it for a static-static pair;
the per-message KDF, GMAC and ECDSA work is measured. Baselines in the same run: raw
``cryptography`` AES-128-GCM (GMAC over the same bytes) and ECDSA-P256 verify.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smarthydra.gbcs import security
from smarthydra.gbcs.envelope import CraFlag, GbcsMessage, decode_message, parse_mac_header
from smarthydra.gbcs.replay import ReplayGuard, receive_command
from smarthydra.gbcs.rtds import (
    KeyKind,
    RtdsKeystore,
    mac_secret,
    read_hex_file,
    rtds_message_files,
)
from smarthydra.gbcs.usecase import (
    MessageKeys,
    UseCaseMessage,
    build_command,
    decode_use_case_message,
)

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(os.environ.get("SMARTHYDRA_CONFORMANCE", REPO.parent / "shared" / "conformance"))


def _rate(fn: Callable[[], int], seconds: float) -> float:
    """Items per second: call ``fn`` (which returns how many items it did) for ``seconds``."""
    done = 0
    start = time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def run(quick: bool) -> dict[str, object]:
    root = CONFORMANCE / "gbcs"
    if not (root / "rtds-4.5.0").is_dir():
        return {"skipped": f"conformance data not found under {root}"}
    seconds = 0.3 if quick else 2.0
    keys = RtdsKeystore.load(root / "rtds-keystore")
    macd: list[tuple[bytes, bytes]] = []  # (wire, Z)
    signed: list[tuple[bytes, ec.EllipticCurvePublicKey]] = []
    for path in rtds_message_files(root / "rtds-4.5.0"):
        wire = read_hex_file(path)
        message = decode_message(wire)
        if message.is_macd:
            z = mac_secret(keys, message)
            if z is not None and _mac_ok(wire, z):
                macd.append((wire, z))
        if message.general_signing.is_signed:
            public = keys.public_key(message.originator, KeyKind.DS)
            if public is not None:
                signed.append((wire, public))

    def mac_pass() -> int:
        for wire, z in macd:
            header = parse_mac_header(wire)
            key = security.mac_key(
                z, header.originator, header.cra_flag, header.originator_counter, header.recipient
            )
            if not security.verify_mac(key, header):
                raise AssertionError("MAC stopped verifying")
            decode_message(wire)
        return len(macd)

    def signature_pass() -> int:
        for wire, public in signed:
            if not security.verify_signature(decode_message(wire), public):
                raise AssertionError("signature stopped verifying")
        return len(signed)

    def parse_pass() -> int:
        for wire, _z in macd:
            decode_message(wire)
        return len(macd)

    # Baselines over the same sizes: GMAC of each general-signing part, ECDSA of each signed part.
    gmac_inputs = [(AESGCM(bytes(16)), wire[14:-12]) for wire, _ in macd]
    nonce = bytes(12)

    def gcm_pass() -> int:
        for aead, aad in gmac_inputs:
            aead.encrypt(nonce, b"", aad)
        return len(gmac_inputs)

    raw_inputs = [wire[14:-12] for wire, _ in macd]
    fresh_key = bytes(range(16))

    def gcm_new_key_pass() -> int:
        # Every GBCS message has its own MAC key, so key setup is part of the honest baseline.
        for aad in raw_inputs:
            AESGCM(fresh_key).encrypt(nonce, b"", aad)
        return len(raw_inputs)

    baseline_key = ec.generate_private_key(ec.SECP256R1())
    baseline_public = baseline_key.public_key()
    data = decode_message(signed[0][0]).general_signing.signed_data()
    der = baseline_key.sign(data, ec.ECDSA(hashes.SHA256()))

    def ecdsa_pass() -> int:
        baseline_public.verify(der, data, ec.ECDSA(hashes.SHA256()))
        return 1

    # The whole use-case layer: envelope + typed payload (xDLMS / GBZ / DER), and building
    # non-critical commands (payload encoding, KDF and GMAC) from decoded parameters.
    all_wires = [read_hex_file(p) for p in rtds_message_files(root / "rtds-4.5.0")]
    commands: list[tuple[UseCaseMessage, bytes]] = []
    for wire, z in macd:
        decoded = decode_use_case_message(wire)
        if decoded.cra_flag is CraFlag.COMMAND and not decoded.is_signed:
            commands.append((decoded, z))

    def use_case_decode_pass() -> int:
        for wire in all_wires:
            decode_use_case_message(wire)
        return len(all_wires)

    def build_pass() -> int:
        for decoded, z in commands:
            build_command(
                decoded.message_code,
                decoded.params,
                originator=decoded.originator,
                recipient=decoded.recipient,
                counter=decoded.counter,
                keys=MessageKeys(mac_z=z),
            )
        return len(commands)

    # A device accepting commands end to end: MAC before parsing, typed decode, signature
    # for the critical ones, anti-replay (a fresh guard per message: the RTDS reuses counters).
    critical_in: list[tuple[bytes, bytes, ec.EllipticCurvePublicKey]] = []
    for wire, z in macd:
        message = decode_message(wire)
        public = keys.public_key(message.originator, KeyKind.DS)
        if (
            message.cra_flag is CraFlag.COMMAND
            and message.general_signing.is_signed
            and public is not None
        ):
            critical_in.append((wire, z, public))

    def receive_non_critical_pass() -> int:
        for decoded, z in commands:
            receive_command(decoded.message.wire(), mac_z=z, guard=ReplayGuard())
        return len(commands)

    def receive_critical_pass() -> int:
        for wire, z, public in critical_in:
            receive_command(wire, mac_z=z, guard=ReplayGuard(), signer_public_key=public)
        return len(critical_in)

    receive_nc_rate = _rate(receive_non_critical_pass, seconds)
    receive_c_rate = _rate(receive_critical_pass, seconds)
    decode_rate = _rate(use_case_decode_pass, seconds)
    build_rate = _rate(build_pass, seconds)
    mac_rate = _rate(mac_pass, seconds)
    sig_rate = _rate(signature_pass, seconds)
    parse_rate = _rate(parse_pass, seconds)
    gcm_rate = _rate(gcm_pass, seconds)
    gcm_new_key_rate = _rate(gcm_new_key_pass, seconds)
    ecdsa_rate = _rate(ecdsa_pass, seconds)
    return {
        "messages": {"mac_checked": len(macd), "signature_checked": len(signed)},
        "parse_only_per_s": round(parse_rate),
        "mac_verify_per_s": round(mac_rate),
        "signature_verify_per_s": round(sig_rate),
        "baseline_aes_gcm_gmac_per_s": round(gcm_rate),
        "baseline_aes_gcm_new_key_per_s": round(gcm_new_key_rate),
        "baseline_ecdsa_verify_per_s": round(ecdsa_rate),
        "mac_vs_raw_aes_gcm": round(mac_rate / gcm_rate, 3),
        "mac_vs_raw_aes_gcm_new_key": round(mac_rate / gcm_new_key_rate, 3),
        "signature_vs_raw_ecdsa": round(sig_rate / ecdsa_rate, 3),
        "use_case_decode_per_s": round(decode_rate),
        "build_non_critical_command_per_s": round(build_rate),
        "build_vs_raw_aes_gcm_new_key": round(build_rate / gcm_new_key_rate, 3),
        "device_receive_non_critical_per_s": round(receive_nc_rate),
        "device_receive_critical_per_s": round(receive_c_rate),
        "device_receive_non_critical_vs_raw_aes_gcm_new_key": round(
            receive_nc_rate / gcm_new_key_rate, 3
        ),
        "device_receive_critical_vs_raw_ecdsa": round(receive_c_rate / ecdsa_rate, 3),
    }


def _mac_ok(wire: bytes, z: bytes) -> bool:
    message: GbcsMessage = decode_message(wire)
    return security.verify_mac(security.message_mac_key(z, message), message)

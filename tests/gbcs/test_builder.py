"""Building commands, pre-commands, responses and alerts, checked against the RTDS bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.gbcs import builder, security
from smarthydra.gbcs.envelope import CraFlag, decode_message, parse_mac_header
from smarthydra.gbcs.errors import GbcsEncodeError
from smarthydra.gbcs.rtds import KeyKind, RtdsKeystore
from tests.conftest import conformance_path
from tests.gbcs.memory_keystore import MemoryKeystore
from tests.gbcs.vectors import read_hex

SUPPLIER = bytes.fromhex("90B3D51F30010000")
ESME = bytes.fromhex("00DB1234567890A0")


@pytest.fixture(scope="module")
def rtds() -> tuple[Path, RtdsKeystore]:
    root = conformance_path("gbcs")
    return root / "rtds-4.5.0", RtdsKeystore.load(root / "rtds-keystore")


def _acb_z(keys: RtdsKeystore, device: bytes) -> bytes:
    acb = keys.access_control_broker
    assert acb is not None
    z = keys.shared_secret(acb, device)
    assert z is not None
    return z


def test_non_critical_command_4_1_1_is_byte_exact(rtds: tuple[Path, RtdsKeystore]) -> None:
    directory, keys = rtds
    expected = read_hex(directory / "4.1.1_ECS17b" / "ECS17b_4.1.1_SINGLE_SUCCESS_COMMAND_GBCS.HEX")
    parsed = decode_message(expected)
    built = builder.build_command(
        originator=SUPPLIER,
        recipient=ESME,
        counter=parsed.originator_counter,
        message_code=0x0027,
        payload=parsed.payload,
        acb_z=_acb_z(keys, ESME),
    )
    assert built.encode() == expected
    assert built.wire() == expected


def test_response_4_1_1_is_byte_exact(rtds: tuple[Path, RtdsKeystore]) -> None:
    directory, keys = rtds
    expected = read_hex(
        directory / "4.1.1_ECS17b" / "ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX"
    )
    parsed = decode_message(expected)
    # The device's private key is not published; Z is symmetric, so use the supplier's half.
    z = keys.shared_secret(SUPPLIER, ESME)
    assert z is not None
    built = builder.build_response(
        device=ESME,
        recipient=SUPPLIER,
        counter=parsed.originator_counter,
        message_code=parsed.message_code,
        payload=parsed.payload,
        z=z,
        date_time=parsed.date_time,
    )
    assert built.encode() == expected


def test_critical_command_7_2_precommand_sign_and_mac(rtds: tuple[Path, RtdsKeystore]) -> None:
    directory, keys = rtds
    folder = directory / "7.2_ECS43"
    expected_pre = read_hex(folder / "ECS43_7.2_SUCCESS_PRECOMMAND_GBCS.HEX")
    expected_cmd = read_hex(folder / "ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX")
    parsed = decode_message(expected_cmd)
    common = {
        "originator": SUPPLIER,
        "recipient": ESME,
        "counter": parsed.originator_counter,
        "message_code": 0x0050,
        "payload": parsed.payload,
    }
    # The RTDS pre-command ends at the payload; GBCS's form adds signature length 00.
    assert builder.build_precommand(**common, signature_field=False).encode() == expected_pre
    pre = builder.build_precommand(**common)
    assert pre.encode() == expected_pre + b"\x00"

    supplier = MemoryKeystore()
    supplier_private = keys.parties[SUPPLIER].private[KeyKind.DS]
    supplier.import_private_key("supplier-ds", supplier_private, KeyUsage.DIGITAL_SIGNATURE)
    signed = builder.sign_precommand(pre.encode(), keystore=supplier, label="supplier-ds")
    command = builder.mac_command(signed, acb_z=_acb_z(keys, ESME))
    wire = command.encode()
    # Same bytes as the RTDS except the 64 signature bytes (ECDSA is randomised) and the MAC.
    sig_start = len(expected_cmd) - 12 - 64
    assert wire[:sig_start] == expected_cmd[:sig_start]
    assert len(wire) == len(expected_cmd)
    rebuilt = decode_message(wire)
    assert security.verify_signature(rebuilt, supplier_private.public_key())
    assert security.verify_mac(security.message_mac_key(_acb_z(keys, ESME), rebuilt), rebuilt)
    # With the RTDS signature put back, the whole command is byte-exact.
    assert parsed.general_signing.signature is not None
    original = builder.mac_command(
        signed.with_signature(parsed.general_signing.signature), acb_z=_acb_z(keys, ESME)
    )
    assert original.encode() == expected_cmd


def test_device_flow_checks_mac_before_parsing(rtds: tuple[Path, RtdsKeystore]) -> None:
    directory, keys = rtds
    wire = read_hex(directory / "7.2_ECS43" / "ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX")
    header = parse_mac_header(wire)
    z = _acb_z(keys, header.recipient)
    key = security.mac_key(
        z, header.originator, header.cra_flag, header.originator_counter, header.recipient
    )
    assert security.verify_mac(key, header)
    message = decode_message(wire)
    ds = keys.public_key(message.originator, KeyKind.DS)
    assert ds is not None and security.verify_signature(message, ds)


def test_build_alert_and_signed_only_message() -> None:
    device = ec.generate_private_key(ec.SECP256R1())
    supplier = ec.generate_private_key(ec.SECP256R1())
    z = primitives.ecdh(supplier, device.public_key())
    alert = builder.build_alert(
        device=ESME,
        recipient=SUPPLIER,
        counter=0x1234,
        message_code=0x0096,
        payload=b"\x0f\x00\x00\x00\x00",
        z=z,
    )
    decoded = decode_message(alert.encode())
    assert decoded.cra_flag is CraFlag.ALERT
    assert security.verify_mac(
        security.message_mac_key(primitives.ecdh(device, supplier.public_key()), decoded), decoded
    )
    gs = builder.build_general_signing(
        cra_flag=CraFlag.ALERT,
        originator=ESME,
        recipient=SUPPLIER,
        counter=1,
        message_code=0x00CC,
        payload=b"\x01\x02",
    )
    signed = builder.sign_message(gs, private_key=device)
    assert not signed.is_macd
    assert security.verify_signature(decode_message(signed.encode()), device.public_key())


def test_builder_rejects_bad_parts() -> None:
    with pytest.raises(GbcsEncodeError, match="8 bytes"):
        builder.build_precommand(
            originator=b"\x01", recipient=ESME, counter=1, message_code=1, payload=b""
        )
    with pytest.raises(GbcsEncodeError, match="date-time"):
        builder.build_precommand(
            originator=SUPPLIER,
            recipient=ESME,
            counter=1,
            message_code=1,
            payload=b"",
            date_time=b"\x00",
        )
    pre = builder.build_precommand(
        originator=SUPPLIER, recipient=ESME, counter=1, message_code=1, payload=b"\x01"
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signed = builder.sign_precommand(pre, private_key=key)
    with pytest.raises(GbcsEncodeError, match="already signed"):
        builder.sign_precommand(signed, private_key=key)
    response = builder.build_general_signing(
        cra_flag=CraFlag.RESPONSE,
        originator=ESME,
        recipient=SUPPLIER,
        counter=1,
        message_code=1,
        payload=b"",
    )
    with pytest.raises(GbcsEncodeError, match="only a command"):
        builder.sign_precommand(response, private_key=key)
    with pytest.raises(GbcsEncodeError, match="takes a command"):
        builder.mac_command(response, acb_z=bytes(32))

"""UTRN generation, verification and anti-replay; the RTDS CS01a/b top-up messages."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softhsm import SoftHsmToken
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.rtds import Outcome, RtdsKeystore, check_message, read_hex_file
from smarthydra.gbcs.utrn import (
    MAC_BITS,
    MAX_COUNTER,
    MAX_VALUE,
    VALUE_BITS,
    Ptut,
    UtrnCheckDigitError,
    UtrnCounterCache,
    UtrnError,
    UtrnFormatError,
    UtrnMacError,
    UtrnTooOld,
    UtrnUsed,
    check_digit,
    encode_utrn,
    generate_utrn,
    parse_utrn,
    utrn_from_cs01,
    value_for_pence,
    verify_utrn,
)
from tests.conftest import conformance_path
from tests.crypto.softhsm_fixtures import softhsm_token

__all__ = ["softhsm_token"]

SUPPLIER = bytes.fromhex("90b3d51f30010000")
DEVICE = bytes.fromhex("00db1234567890a0")
SUPPLIER_KEY = primitives.private_key_from_scalar(bytes(31) + b"\x07")
DEVICE_KEY = primitives.private_key_from_scalar(bytes(31) + b"\x0b")
# the supplier's Z (its prepayment key x the meter's KA key) equals the meter's Z
Z_SUPPLIER = primitives.ecdh(SUPPLIER_KEY, DEVICE_KEY.public_key())
Z_METER = primitives.ecdh(DEVICE_KEY, SUPPLIER_KEY.public_key())


def test_verhoeff_check_digit() -> None:
    # GBCS's procedure starts the permutation index at 4 for the leftmost of 19 digits;
    # like any Verhoeff scheme it catches every single-digit error and adjacent transposition
    digits = "1234567890123456789"
    good = digits + str(check_digit(digits))
    for i in range(20):
        for delta in range(1, 10):
            wrong = good[:i] + str((int(good[i]) + delta) % 10) + good[i + 1 :]
            assert check_digit(wrong[:19]) != int(wrong[19])
    for i in range(18):
        swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
        if swapped != digits:
            assert check_digit(swapped) != check_digit(digits)


def test_generate_and_verify_once() -> None:
    assert Z_SUPPLIER == Z_METER
    utrn = generate_utrn(Z_SUPPLIER, SUPPLIER, DEVICE, counter=1000, value=2000)
    ptut = verify_utrn(utrn, Z_METER, SUPPLIER, DEVICE)
    assert (ptut.counter, ptut.pence) == (1000, 2000)
    cache = UtrnCounterCache().accept(ptut.counter)
    with pytest.raises(UtrnUsed):
        cache.accept(ptut.counter)


def test_refusals() -> None:
    utrn = generate_utrn(Z_SUPPLIER, SUPPLIER, DEVICE, counter=7, value=50, value_class=1)
    assert parse_utrn(utrn).pence == 5000
    with pytest.raises(UtrnCheckDigitError):
        parse_utrn(utrn[:5] + str((int(utrn[5]) + 1) % 10) + utrn[6:])
    other_device = bytes.fromhex("00db1234567890a1")
    with pytest.raises(UtrnMacError):
        verify_utrn(utrn, Z_METER, SUPPLIER, other_device)
    tampered = encode_utrn(Ptut(7, 51, 1, parse_utrn(utrn).mac))
    with pytest.raises(UtrnMacError):
        verify_utrn(tampered, Z_METER, SUPPLIER, DEVICE)
    with pytest.raises(UtrnFormatError):
        parse_utrn("1234")
    with pytest.raises(UtrnFormatError):
        generate_utrn(Z_SUPPLIER, SUPPLIER, DEVICE, counter=1 << 32, value=1)


def test_counter_cache_anti_replay() -> None:
    cache = UtrnCounterCache(size=3)
    for counter in (10, 12, 11):
        cache = cache.accept(counter)
    cache = cache.accept(5 + 10)  # newer: the oldest (10) is forgotten
    assert cache.counters == (11, 12, 15)
    with pytest.raises(UtrnTooOld):
        cache.accept(10)
    with pytest.raises(UtrnUsed):
        cache.accept(12)
    assert cache.accept(13).counters == (12, 13, 15)  # out of order but newer than the oldest


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=25) | st.from_regex(r"\A[0-9]{20}\Z"))
def test_fuzz_parse_only_raises_utrn_errors(text: str) -> None:
    with contextlib.suppress(UtrnError):
        verify_utrn(text, Z_METER, SUPPLIER, DEVICE)


RTDS_FILES = [
    "2.2_CS01a/CS01a_2.2_SUCCESS_COMMAND_GBCS.HEX",
    "2.2_CS01a/CS01a_2.2_ERROR_COMMAND_GBCS.HEX",
    "2.2_CS01b/CS01b_2.2_SUCCESS_COMMAND_GBCS.HEX",
    "2.2_CS01b/CS01b_2.2_ERROR_COMMAND_GBCS.HEX",
]


@pytest.mark.parametrize("name", RTDS_FILES)
def test_rtds_top_up_commands_parse_and_verify(name: str) -> None:
    path = conformance_path("gbcs", "rtds-4.5.0", name)
    keystore = RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))
    raw = read_hex_file(path)
    check = check_message(path.name, raw, keystore)
    assert check.parsed and check.mac is Outcome.VALID
    utrn = utrn_from_cs01(raw)
    assert len(utrn) == 20 and utrn.isdigit()


def test_rtds_utrns_are_placeholders() -> None:
    # RTDS UTRNs are illustrative digits (one is 12345678910121314156): their GBCS check
    # digits do not hold, so a meter would refuse them at the first step
    raw = read_hex_file(conformance_path("gbcs", "rtds-4.5.0", RTDS_FILES[3]))
    assert utrn_from_cs01(raw) == "12345678910121314156"
    with pytest.raises(UtrnCheckDigitError):
        parse_utrn("12345678910121314156")


def test_utrn_from_a_non_top_up_message_is_refused() -> None:
    path = conformance_path(
        "gbcs", "rtds-4.5.0", "2.2_CS01a", "CS01a_2.2_SUCCESS_RESPONSE_GBCS.HEX"
    )
    with pytest.raises(GbcsError):
        utrn_from_cs01(read_hex_file(path))


@pytest.mark.softhsm
def test_supplier_key_in_hsm(softhsm_token: SoftHsmToken) -> None:
    from smarthydra.crypto.pkcs11store import Pkcs11Keystore

    with Pkcs11Keystore(
        softhsm_token.module_path, softhsm_token.token_label, softhsm_token.user_pin
    ) as store:
        store.import_private_key("supplier-pp", SUPPLIER_KEY, KeyUsage.KEY_AGREEMENT)
        z = store.derive_shared_secret("supplier-pp", DEVICE_KEY.public_key())
    utrn = generate_utrn(z, SUPPLIER, DEVICE, counter=42, value=1500)
    assert verify_utrn(utrn, Z_METER, SUPPLIER, DEVICE).counter == 42


def _pem(tmp: Path, name: str, private: bool) -> str:
    path = tmp / name
    key = SUPPLIER_KEY if name.startswith("supplier") else DEVICE_KEY
    if private:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    else:
        path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return str(path)


def test_cli_generate_verify_once(tmp_path: Path) -> None:
    runner = CliRunner()
    ids = ["--supplier", SUPPLIER.hex(), "--device", DEVICE.hex()]
    gen = runner.invoke(
        app,
        [
            "utrn",
            "generate",
            *ids,
            "--key",
            _pem(tmp_path, "supplier.key", True),
            "--peer",
            _pem(tmp_path, "device.pub", False),
            "--counter",
            "9",
            "--value",
            "1000",
        ],
    )
    assert gen.exit_code == 0, gen.output
    utrn = gen.output.strip()
    meter = [
        *ids,
        "--key",
        _pem(tmp_path, "device.key", True),
        "--peer",
        _pem(tmp_path, "supplier.pub", False),
        "--state",
        str(tmp_path / "cache.json"),
        "--json",
    ]
    first = runner.invoke(app, ["utrn", "verify", utrn, *meter])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"accepted": True, "counter": 9, "pence": 1000}
    second = runner.invoke(app, ["utrn", "verify", utrn, *meter])
    assert second.exit_code == 1 and json.loads(second.stdout)["reason"] == "used"
    extract = runner.invoke(
        app, ["utrn", "extract", str(conformance_path("gbcs", "rtds-4.5.0", RTDS_FILES[0]))]
    )
    assert json.loads(extract.output)["utrn"] == "73946144332040217315"
    missing = runner.invoke(
        app,
        [
            "utrn",
            "generate",
            *ids,
            "--key",
            str(tmp_path / "supplier.key"),
            "--peer",
            str(tmp_path / "nope"),
            "--counter",
            "1",
            "--value",
            "1",
        ],
    )
    assert missing.exit_code == 2 and "cannot read" in missing.output


RTDS_SUPPLIER = "90b3d51f30010000"
RTDS_METER = "00db1234567890a0"


def test_cli_with_the_rtds_keys() -> None:
    conformance = str(conformance_path("gbcs", "rtds-keystore").parent.parent)
    runner = CliRunner()
    ids = ["--supplier", RTDS_SUPPLIER, "--conformance", conformance]
    gen = runner.invoke(app, ["utrn", "generate", *ids, "--device", RTDS_METER,
                              "--counter", "1721692838", "--value", "2500", "--json"])
    assert gen.exit_code == 0, gen.output
    made = json.loads(gen.output)
    assert made["counter"] == 1721692838 and made["pence"] == 2500
    ok = runner.invoke(app, ["utrn", "verify", made["utrn"], *ids, "--device", RTDS_METER,
                             "--json"])
    assert json.loads(ok.output) == {"accepted": True, "counter": 1721692838, "pence": 2500}
    other = runner.invoke(app, ["utrn", "verify", made["utrn"], *ids, "--device",
                                "00db1234567890a1", "--json"])
    assert other.exit_code == 1 and json.loads(other.stdout)["reason"] == "mac"
    no_key = runner.invoke(app, ["utrn", "generate", "--supplier", "90b3d51f30020000",
                                 "--conformance", conformance, "--device", RTDS_METER,
                                 "--value", "1"])
    assert no_key.exit_code == 2 and "no prepayment top-up private key" in no_key.output
    both = runner.invoke(app, ["utrn", "generate", *ids, "--device", RTDS_METER, "--value", "1",
                               "--key", "x.pem"])
    assert both.exit_code == 2 and "exactly one" in both.output


def test_layout_counter_on_top_and_limits() -> None:
    utrn = generate_utrn(Z_SUPPLIER, SUPPLIER, DEVICE, counter=1721692838, value=MAX_VALUE,
                         value_class=1)
    assert int(utrn[:19]) >> 32 == 1721692838  # the counter is the PTUT's top 32 bits
    assert parse_utrn(utrn).pence == MAX_VALUE * 100
    assert generate_utrn(Z_SUPPLIER, SUPPLIER, DEVICE, MAX_COUNTER, 1)  # still 19 digits
    with pytest.raises(UtrnFormatError):
        generate_utrn(Z_SUPPLIER, SUPPLIER, DEVICE, MAX_COUNTER + 1, 1)
    assert value_for_pence(999) == (999, 0) and value_for_pence(50000) == (500, 1)
    with pytest.raises(UtrnFormatError):
        value_for_pence(MAX_VALUE + 1)  # not whole pounds
    with pytest.raises(UtrnFormatError):
        value_for_pence(0)
    reserved = encode_utrn(Ptut(5, 1, 0, 0))
    number = int(reserved[:19]) | 2 << (VALUE_BITS + MAC_BITS)  # value class 2: reserved
    digits = f"{number:019d}"
    with pytest.raises(UtrnFormatError):
        parse_utrn(digits + str(check_digit(digits)))


def test_top_up_floor() -> None:
    cache = UtrnCounterCache()
    with pytest.raises(UtrnTooOld):
        cache.accept(100, floor=100)
    assert cache.accept(101, floor=100).counters == (101,)

"""atheris harness: the card's parsers (ISO 7816 APDUs, a GP card's transmit, GP TLV and
certificate stores, applet packages, the sandbox compiler).

Run: ``python -m tests.fuzz.fuzz_card -runs=100000`` (from the repository root).
"""

from __future__ import annotations

import contextlib
import sys

from tests.fuzz.harness import Target, digits_of, main, text_of

INSTRUMENT = ("smarthydra.card",)

# The GP card's status words (ISO 7816-4 ranges 61xx-6Fxx and 9000); never an exception.
_SW_RANGE = range(0x6100, 0x7000)


def targets() -> list[Target]:
    from smarthydra.card.apdu import APDUFormatError, CommandAPDU, ResponseAPDU
    from smarthydra.card.card import Card
    from smarthydra.card.gp import tlv
    from smarthydra.card.gp.certificates import (
        parse_certificate_store,
        parse_certificates,
        parse_gp_certificate,
        parse_x509_certificate,
    )
    from smarthydra.card.gp.errors import GpError, WrongData
    from smarthydra.card.gp.profile import gp_test_profile
    from smarthydra.card.memory import MemoryBacking
    from smarthydra.card.package import AppletPackage, PackageError
    from smarthydra.card.rng import DeterministicRandom
    from smarthydra.card.sandbox import SandboxViolation, compile_applet
    from smarthydra.crypto.primitives import private_key_from_scalar

    card = Card(MemoryBacking(), gp_test_profile(private_key_from_scalar(bytes(31) + b"\x07")),
                rng=DeterministicRandom(b"fuzz"))
    card.power_on()
    isd_select = bytes.fromhex("00A4040008A000000151000000")

    def apdu(data: bytes) -> None:
        command = CommandAPDU.parse(data)
        if CommandAPDU.parse(command.encode()) != command:
            raise AssertionError(f"APDU does not round-trip: {data.hex()}")

    def transmit(data: bytes) -> None:
        # A session: SELECT the ISD, then the input cut into APDUs at 0xFF 0xFF marks.
        for command in (isd_select, *data.split(b"\xff\xff")):
            sw = ResponseAPDU.parse(card.transmit(command)).sw
            if sw != 0x9000 and sw not in _SW_RANGE:
                raise AssertionError(f"status word {sw:04X} for {command.hex()}")

    def gp_tlv(data: bytes) -> None:
        for item in tlv.parse_all(data):
            if item.constructed:
                item.children()

    def certificates(data: bytes) -> None:
        for parse in (parse_certificate_store, parse_certificates, parse_gp_certificate,
                      parse_x509_certificate):
            with contextlib.suppress(WrongData):
                parse(data)

    def package(data: bytes) -> None:
        decoded = AppletPackage.decode(data)
        if AppletPackage.decode(decoded.encode()) != decoded:
            raise AssertionError("package does not round-trip")

    def sandbox(data: bytes) -> None:
        compile_applet(text_of(data[:2000]))

    return [
        Target("CommandAPDU.parse", apdu, (APDUFormatError,)),
        Target("ResponseAPDU.parse", ResponseAPDU.parse, (APDUFormatError,)),
        Target("Card.transmit (GP)", transmit, ()),
        Target("gp.tlv", gp_tlv, (WrongData,)),
        Target("gp certificates", certificates, (), unspecific=(GpError,)),
        Target("AppletPackage.decode", package, (PackageError,)),
        Target("compile_applet", sandbox, (SandboxViolation,)),
        Target("compile_applet (digits)", lambda b: compile_applet(digits_of(b, 40)),
               (SandboxViolation,)),
    ]


if __name__ == "__main__":
    main(sys.modules[__name__])

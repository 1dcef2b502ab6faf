"""atheris harness: STS tokens (decode, meter redeem) and GB UTRNs (parse, verify, counters).

Run: ``python -m tests.fuzz.fuzz_prepay -runs=100000`` (from the repository root).
"""

from __future__ import annotations

import sys

from tests.fuzz.harness import Target, digits_of, main, text_of

INSTRUMENT = ("smarthydra.prepay", "smarthydra.gbcs.utrn")

_Z = bytes(range(32))
_SUPPLIER = bytes.fromhex("90B3D51F30010000")
_DEVICE = bytes.fromhex("00DB123456789AB0")


def targets() -> list[Target]:
    from smarthydra.gbcs.errors import GbcsDecodeError, GbcsError
    from smarthydra.gbcs.utrn import (
        UtrnCounterCache,
        UtrnError,
        generate_utrn,
        parse_utrn,
        utrn_from_cs01,
        verify_utrn,
    )
    from smarthydra.prepay import sts_tokens
    from smarthydra.prepay.errors import PrepayError, TokenRefused
    from smarthydra.prepay.sts_algorithms import (
        BaseDate,
        EncryptionAlgorithm,
        KeyGenerationAlgorithm,
        MeterIdentity,
    )
    from smarthydra.prepay.sts_meter import MeterState, redeem
    from smarthydra.prepay.sts_vending import SoftVendingKey, VendingServer

    meter = MeterIdentity("600727000000000009", "123456", 1, 1, 2)
    vending = VendingServer(SoftVendingKey(bytes.fromhex("abababababababab")),
                            KeyGenerationAlgorithm("02"), EncryptionAlgorithm("07"),
                            BaseDate(1993), random_nibble=lambda: 5)
    state = MeterState(decoder_key=vending.decoder_key(meter), algorithm=vending.algorithm,
                       base_date=vending.base_date, krn=meter.krn, kt=meter.kt, ti=meter.ti)

    def decode(digits: str) -> None:
        sts_tokens.decode_token(digits, state.decoder_key, state.algorithm)

    def authentic_tokens(data: bytes) -> None:
        """Tokens built from the input's bits and encrypted under the meter's key, so they pass
        the CRC and reach the meter's rules; up to four are redeemed in turn."""
        current = state
        for start in range(0, min(len(data), 28), 7):
            chunk = data[start : start + 7].ljust(7, b"\x00")
            token_class = chunk[0] % 3
            try:
                token = sts_tokens._parse(token_class, chunk[1] % 16,
                                          int.from_bytes(chunk[1:], "big") & ((1 << 44) - 1))
            except TokenRefused:
                continue
            digits = sts_tokens.encode_token(token, current.decoder_key, current.algorithm)
            if sts_tokens.decode_token(digits, current.decoder_key, current.algorithm) != token:
                raise AssertionError(f"token {digits} does not round-trip: {token}")
            try:
                current, _ = redeem(current, digits)
            except TokenRefused:
                continue

    def utrn_authentic(data: bytes) -> None:
        raw = int.from_bytes(data[:8].ljust(8, b"\x00"), "big")
        counter, value, value_class = raw >> 16, raw & 0x3FFF, (raw >> 14) & 1
        utrn = generate_utrn(_Z, _SUPPLIER, _DEVICE, counter, value, value_class)
        ptut = verify_utrn(utrn, _Z, _SUPPLIER, _DEVICE)
        cache = UtrnCounterCache()
        for step in range(8, min(len(data), 40), 4):
            cache = cache.accept(int.from_bytes(data[step : step + 4], "big"))
        cache.check(ptut.counter)

    def utrn_counters(data: bytes) -> None:
        cache = UtrnCounterCache()
        for step in range(0, min(len(data), 64), 8):
            value = int.from_bytes(data[step : step + 8], "big") >> 1
            try:
                cache.check(value, floor=data[0])
                cache = cache.accept(value, floor=data[0])
            except UtrnError:
                continue

    return [
        Target("decode_token", lambda b: decode(text_of(b)), (TokenRefused,),
               unspecific=(TokenRefused,)),
        Target("decode_token (digits)", lambda b: decode(digits_of(b)), (TokenRefused,),
               unspecific=(TokenRefused,)),
        Target("redeem (digits)", lambda b: redeem(state, digits_of(b)), (TokenRefused,),
               unspecific=(TokenRefused,)),
        Target("redeem (authentic tokens)", authentic_tokens, (PrepayError,),
               unspecific=(PrepayError, TokenRefused)),
        Target("parse_utrn", lambda b: parse_utrn(text_of(b)), (UtrnError,),
               unspecific=(UtrnError,)),
        Target("verify_utrn (digits)",
               lambda b: verify_utrn(digits_of(b), _Z, _SUPPLIER, _DEVICE), (UtrnError,),
               unspecific=(UtrnError,)),
        Target("generate + verify_utrn", utrn_authentic, (UtrnError,), unspecific=(UtrnError,)),
        Target("utrn_from_cs01", utrn_from_cs01, (GbcsDecodeError, UtrnError),
               unspecific=(GbcsError, GbcsDecodeError, UtrnError)),
        Target("UtrnCounterCache", utrn_counters, (UtrnError,), unspecific=(UtrnError,)),
    ]


if __name__ == "__main__":
    main(sys.modules[__name__])

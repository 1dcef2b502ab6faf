"""atheris harness: the applets' CBOR and COSE decoding (signed statements, sealed messages).

Run: ``python -m tests.fuzz.fuzz_applets -runs=100000`` (from the repository root).
"""

from __future__ import annotations

import sys

from tests.fuzz.harness import Target, main, splice

INSTRUMENT = ("smarthydra.applets.cose", "smarthydra.applets.base")


def targets() -> list[Target]:
    from smarthydra.applets.base import decode_cbor
    from smarthydra.applets.cose import (
        EnvelopeError,
        HostAgreement,
        open_sealed,
        parse_sign1,
        seal,
        sealed_header,
        sign1,
        verify_sign1,
    )
    from smarthydra.card.applet import ISOException
    from smarthydra.crypto.primitives import ecdsa_sign, private_key_from_scalar, public_key_to_xy

    signer = private_key_from_scalar(bytes(31) + b"\x05")
    recipient = private_key_from_scalar(bytes(31) + b"\x06")
    statement = sign1({"tariff": [1, 2, 3], "from": "supplier"}, b"kid-1",
                      lambda data: ecdsa_sign(signer, data))
    sealed = seal(b"meter readings", sender="applet", recipient="supplier",
                  recipient_xy=public_key_to_xy(recipient.public_key()),
                  ephemeral=HostAgreement(private_key_from_scalar(bytes(31) + b"\x09")),
                  iv=bytes(12))

    return [
        Target("parse_sign1", parse_sign1, (EnvelopeError,)),
        Target("verify_sign1 (spliced)",
               lambda b: verify_sign1(splice(statement, b), signer.public_key()), (EnvelopeError,)),
        Target("sealed_header", sealed_header, (EnvelopeError,)),
        Target("open_sealed (spliced)", lambda b: open_sealed(splice(sealed, b), recipient),
               (EnvelopeError,)),
        Target("decode_cbor", lambda b: decode_cbor(b, "fuzz"), (ISOException,)),
    ]


if __name__ == "__main__":
    main(sys.modules[__name__])

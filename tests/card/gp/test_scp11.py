"""SCP11a/b/c host <-> card with our own keys and certificates, plus independent cross-checks."""

from __future__ import annotations

import hashlib
import random

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import algorithms

from smarthydra.card.gp import tlv
from smarthydra.card.gp.apdu import CommandApdu
from smarthydra.card.gp.certificates import (
    build_gp_certificate,
    parse_certificate_store,
    point_bytes,
)
from smarthydra.card.gp.errors import GpError
from smarthydra.card.gp.scp11 import (
    Scp11CardConfig,
    Scp11CardSession,
    Scp11HostSession,
    Scp11Variant,
    derive_scp11_keys,
    precompute_scp11c_script,
)

CURVES = [ec.SECP256R1(), ec.SECP384R1(), ec.BrainpoolP256R1()]


def _key(curve: ec.EllipticCurve, seed: int) -> ec.EllipticCurvePrivateKey:
    # Deterministic keys so that failures reproduce.
    order_bytes = (curve.key_size + 7) // 8
    scalar = int.from_bytes(random.Random(seed).randbytes(order_bytes), "big") >> 8
    return ec.derive_private_key(scalar + 1, curve)


class World:
    def __init__(self, curve: ec.EllipticCurve) -> None:
        self.ca = _key(curve, 1)
        self.sd = _key(curve, 2)
        self.oce = _key(curve, 3)
        self.oce_cert = build_gp_certificate(
            serial=b"\x01",
            ca_kloc_id=b"\xca",
            subject_id=b"OCE",
            public_key=self.oce.public_key(),
            signer=self.ca,
        )
        self.sd_cert = build_gp_certificate(
            serial=b"\x02",
            ca_kloc_id=b"\xca",
            subject_id=b"SD",
            public_key=self.sd.public_key(),
            signer=self.ca,
        )

    def card(self, s_mode: int = 8) -> Scp11CardSession:
        seeds = iter(range(1000, 2000))
        return Scp11CardSession(
            Scp11CardConfig(
                self.sd, kvn=0x03, oce_ca_public_key=self.ca.public_key(), s_mode=s_mode
            ),
            new_ephemeral_key=lambda curve: _key(curve, next(seeds)),
        )

    def host(
        self, variant: Scp11Variant, key_length: int = 16, s_mode: int = 8
    ) -> Scp11HostSession:
        store = parse_certificate_store(tlv.encode(0xBF21, self.sd_cert))
        store[-1].verify(self.ca.public_key())
        return Scp11HostSession(
            variant,
            store[-1].public_key,
            kvn=0x03,
            oce_private_key=self.oce,
            oce_certificates=[self.oce_cert],
            ephemeral_key=_key(self.sd.curve, 7),
            key_length=key_length,
            s_mode=s_mode,
        )


def _open(world: World, variant: Scp11Variant, key_length: int = 16, s_mode: int = 8):  # type: ignore[no-untyped-def]
    card, host = world.card(s_mode), world.host(variant, key_length, s_mode)
    if variant is not Scp11Variant.B:
        for pso in host.perform_security_operation():
            assert card.process(pso) == b"\x90\x00"
    host.process_authenticate_response(card.process(host.authenticate()))
    return host, card


def _echo(apdu: object) -> tuple[bytes, int]:
    return b"pong:" + apdu.data, 0x9000  # type: ignore[attr-defined]


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
@pytest.mark.parametrize("variant", list(Scp11Variant), ids=lambda v: f"SCP11{v.name.lower()}")
@pytest.mark.parametrize(("key_length", "s_mode"), [(16, 8), (24, 8), (32, 16)])
def test_round_trip(
    curve: ec.EllipticCurve, variant: Scp11Variant, key_length: int, s_mode: int
) -> None:
    world = World(curve)
    host, card = _open(world, variant, key_length, s_mode)
    assert host.receipt == card.receipt
    for plain in (bytes.fromhex("80F22000024F00"), bytes.fromhex("80CA006600")):
        response = card.process(host.wrap(plain), _echo)
        assert host.unwrap(response).data == b"pong:" + CommandApdu.parse(plain).data


def test_receipt_and_keys_match_an_independent_computation() -> None:
    world = World(ec.SECP256R1())
    host, card = _open(world, Scp11Variant.A)
    # Independent: X9.63 KDF by hand with hashlib, CMAC from cryptography directly.
    sh_see = host.ephemeral_key.exchange(ec.ECDH(), _card_ephemeral(card))
    sh_ss = world.oce.exchange(ec.ECDH(), world.sd.public_key())
    okm = b"".join(
        hashlib.sha256(sh_see + sh_ss + i.to_bytes(4, "big") + b"\x3c\x88\x10").digest()
        for i in (1, 2, 3)
    )[:80]
    assert host.keys is not None
    assert host.keys.receipt_key == okm[:16]
    assert host.keys.session.s_enc == okm[16:32]
    assert host.keys.session.s_dek == okm[64:80]
    mac = cmac.CMAC(algorithms.AES(okm[:16]))
    mac.update(host.command_data or b"")
    mac.update(tlv.encode(0x5F49, point_bytes(_card_ephemeral(card))))
    assert mac.finalize() == host.receipt
    assert derive_scp11_keys(sh_see, sh_ss, 16) == host.keys


def _card_ephemeral(card: Scp11CardSession) -> ec.EllipticCurvePublicKey:
    # The card's ephemeral key was the first from its seeded generator.
    return _key(card.curve, 1000).public_key()


def test_scp11c_script_precomputed_one_way() -> None:
    world = World(ec.SECP256R1())
    commands = [bytes.fromhex("80E60C0005") + b"hello", bytes.fromhex("80F28002024F0000")]
    script = precompute_scp11c_script(
        sd_public_key=world.sd.public_key(),
        oce_private_key=world.oce,
        oce_certificates=[world.oce_cert],
        commands=commands,
        kvn=0x03,
        ephemeral_key=_key(world.sd.curve, 9),
    )
    card = world.card()
    replies = [card.process(apdu) for apdu in script.apdus]
    assert replies[1] == script.expected_authenticate_response
    assert card.receipt == script.receipt
    assert all(reply.endswith(b"\x90\x00") for reply in replies)


def test_oce_certificate_from_another_ca_is_refused() -> None:
    world = World(ec.SECP256R1())
    rogue = build_gp_certificate(
        serial=b"\x09",
        ca_kloc_id=b"\xca",
        subject_id=b"OCE",
        public_key=world.oce.public_key(),
        signer=_key(world.sd.curve, 66),
    )
    card = world.card()
    assert card.process(bytes((0x80, 0x2A, 0x03, 0x10, len(rogue))) + rogue) == b"\x69\x82"
    # and without a verified OCE key, SCP11a authenticate is refused
    host = world.host(Scp11Variant.A)
    assert card.process(host.authenticate()) == b"\x69\x85"


def test_tampered_receipt_fails_on_the_host() -> None:
    world = World(ec.SECP256R1())
    card, host = world.card(), world.host(Scp11Variant.B)
    response = bytearray(card.process(host.authenticate()))
    response[-3] ^= 1
    with pytest.raises(GpError, match="receipt") as err:
        host.process_authenticate_response(bytes(response))
    assert err.value.sw == 0x6300


@pytest.mark.parametrize(
    ("mutate", "sw"),
    [
        (lambda d: d.replace(b"\x90\x02\x11\x00", b"\x90\x02\x11\x07"), 0x6A80),  # unknown variant
        (lambda d: d.replace(b"\x95\x01\x3c", b"\x95\x01\x34"), 0x6A80),  # partial key usage
        (lambda d: d[:-10], 0x6A80),  # truncated point
    ],
)
def test_bad_authenticate_data(mutate, sw: int) -> None:  # type: ignore[no-untyped-def]
    world = World(ec.SECP256R1())
    host = world.host(Scp11Variant.B)
    apdu = host.authenticate()
    data = mutate(apdu[5:-1])
    out = world.card().process(apdu[:4] + bytes((len(data),)) + data + b"\x00")
    assert out == sw.to_bytes(2, "big")


def test_sm_before_authentication_is_6982() -> None:
    world = World(ec.SECP256R1())
    assert world.card().process(bytes.fromhex("84F2200000")) == b"\x69\x82"

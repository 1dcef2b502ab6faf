"""The committed vectors of tests/card/vectors (scripts/gen_gp_vectors.py), each checked twice:
by a second, independent computation with raw ``cryptography``/``hashlib`` calls (not the
production code path), and by the card itself over APDUs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import cmac, hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from smarthydra.card.card import Card
from smarthydra.card.gp.keystore import KeyType, SdKey
from smarthydra.card.gp.management import KeyId
from smarthydra.card.gp.profile import IsdSetup, gp_profile, gp_test_keys
from smarthydra.card.gp.scp03 import Scp03StaticKeys
from smarthydra.card.gp.sd import keys_dgi
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.registry import Privilege, privileges_of

from .gpcards import scp03_client

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "tests" / "card" / "vectors"
SSD_KEY = bytes(range(0x60, 0x70))


def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())  # type: ignore[no-any-return]


def _b(text: str) -> bytes:
    return bytes.fromhex(text)


def _scalar_key(text: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(text, 16), ec.SECP256R1())


def _raw_cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _apdu_data(apdu: bytes) -> bytes:
    return apdu[5:5 + apdu[4]]


def _ber(tag: bytes, value: bytes) -> bytes:
    n = len(value)
    length = bytes((n,)) if n < 0x80 else (b"\x81" + bytes((n,)) if n < 0x100
                                            else b"\x82" + n.to_bytes(2, "big"))
    return tag + length + value


def _verify(algorithm: str, public: Any, message: bytes, signature: bytes) -> bool:
    try:
        if algorithm.startswith("ecdsa"):
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                       int.from_bytes(signature[32:], "big"))
            public.verify(der, message, ec.ECDSA(hashes.SHA256()))
        else:
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


class _Rng:
    def __init__(self, value: bytes) -> None:
        self.value = value

    def random_bytes(self, n: int) -> bytes:
        return self.value[:n]


def test_committed_vectors_are_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("gen_gp_vectors",
                                                  ROOT / "scripts" / "gen_gp_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


# --- SCP11b -----------------------------------------------------------------------------


@pytest.mark.parametrize("vector", _load("scp11b.json")["sets"], ids=lambda v: v["id"])
def test_scp11b_independently(vector: dict[str, Any]) -> None:
    sd = _scalar_key(vector["sd_private_scalar"])
    oce = _scalar_key(vector["oce_ephemeral_scalar"])
    card_ephemeral = _scalar_key(vector["card_ephemeral_scalar"])
    length = vector["key_length"]
    sh_see = card_ephemeral.exchange(ec.ECDH(), oce.public_key())
    sh_ss = sd.exchange(ec.ECDH(), oce.public_key())
    assert (sh_see, sh_ss) == (_b(vector["sh_see"]), _b(vector["sh_ss"]))
    okm = X963KDF(hashes.SHA256(), 5 * length, bytes((0x3C, 0x88, length))).derive(sh_see + sh_ss)
    names = ("receipt_key", "s_enc", "s_mac", "s_rmac", "s_dek")
    for i, name in enumerate(names):
        assert okm[i * length:(i + 1) * length] == _b(vector[name]), name
    # the card's answer: 5F49 ePK.SD, 86 receipt over the command data and that 5F49 object
    point = card_ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint)
    card_tlv = b"\x5F\x49" + bytes((len(point),)) + point
    command = _b(vector["internal_authenticate"])
    assert command[:4] == bytes((0x80, 0x88, vector["kvn"], vector["kid"]))
    receipt = _raw_cmac(okm[:length], _apdu_data(command) + card_tlv)
    assert _b(vector["response"]) == card_tlv + b"\x86\x10" + receipt + b"\x90\x00"
    # one protected pair: C-MAC chained from the receipt, R-MAC and R-ENC on the answer
    step = vector["steps"][0]
    plain = _b(step["plain"])
    s_enc, s_mac, s_rmac = (_b(vector[n]) for n in ("s_enc", "s_mac", "s_rmac"))
    header = bytes((0x84, plain[1], plain[2], plain[3], 8))
    full_mac = _raw_cmac(s_mac, receipt + header)
    assert _b(step["wrapped"]) == header + full_mac[:8] + b"\x00"
    wrapped_response = _b(step["wrapped_response"])
    body, mac, sw = wrapped_response[:-10], wrapped_response[-10:-2], wrapped_response[-2:]
    assert _raw_cmac(s_rmac, full_mac + body + sw)[:8] == mac
    ecb = Cipher(algorithms.AES(s_enc), modes.ECB()).encryptor()
    icv = ecb.update(b"\x80" + bytes(14) + b"\x01") + ecb.finalize()
    decryptor = Cipher(algorithms.AES(s_enc), modes.CBC(icv)).decryptor()
    padded = decryptor.update(body) + decryptor.finalize()
    assert padded.rstrip(b"\x00")[:-1] + sw == _b(step["plain_response"])
    assert padded.rstrip(b"\x00")[-1:] == b"\x80"


@pytest.mark.parametrize("vector", _load("scp11b.json")["sets"], ids=lambda v: v["id"])
def test_scp11b_on_the_card(vector: dict[str, Any]) -> None:
    sd = _scalar_key(vector["sd_private_scalar"])
    card = Card(MemoryBacking(), gp_profile(IsdSetup(
        keys=[*gp_test_keys(), SdKey.ec_private(0x01, KeyId.SCP11B, sd)])),
        rng=_Rng(_b(vector["card_ephemeral_scalar"])))
    card.power_on()
    assert card.transmit(_b(vector["select"]))[-2:] == b"\x90\x00"
    assert card.transmit(_b(vector["internal_authenticate"])) == _b(vector["response"])
    for step in vector["steps"]:
        assert card.transmit(_b(step["wrapped"])) == _b(step["wrapped_response"])


# --- receipts ---------------------------------------------------------------------------


@pytest.mark.parametrize("vector", _load("receipts.json")["sets"], ids=lambda v: v["id"])
def test_receipts_independently(vector: dict[str, Any]) -> None:
    counter = vector["confirmation_counter"].to_bytes(2, "big")
    cud = _b(vector["card_unique_data"])
    data = b"\x02" + counter + bytes((len(cud),)) + cud
    for aid in vector["aids"]:
        data += bytes((len(_b(aid)),)) + _b(aid)
    assert data == _b(vector["confirmation_data"])
    receipt = _raw_cmac(_b(vector["receipt_key"]), data)
    assert receipt == _b(vector["receipt"])
    assert _b(vector["response"]) == b"\x10" + receipt + b"\x02" + counter + bytes(
        (len(cud),)) + cud


# --- DAP --------------------------------------------------------------------------------


DAP = _load("dap.json")


def _rsa_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key()


def _dap_public(algorithm: str) -> Any:
    if algorithm.startswith("ecdsa"):
        return _scalar_key(DAP["dap_private_scalar"]).public_key()
    return _rsa_public(DAP["rsa_private_key_pem"])


@pytest.mark.parametrize("vector", DAP["sets"], ids=lambda v: v["id"])
def test_dap_independently(vector: dict[str, Any]) -> None:
    block = _b(DAP["load_file_data_block"])
    block_hash = hashlib.sha256(block).digest()
    assert block_hash == _b(DAP["load_file_data_block_hash"])
    signature = _b(vector["signature"])
    assert _verify(vector["algorithm"], _dap_public(vector["algorithm"]), block_hash, signature)
    e2 = _ber(b"\xE2", _ber(b"\x4F", _b(vector["sd_aid"])) + _ber(b"\xC3", signature))
    assert _b(vector["load_file"]) == e2 + _ber(b"\xC4", block)
    commands = [_b(c) for c in vector["load_commands"]]
    assert b"".join(_apdu_data(c) for c in commands) == _b(vector["load_file"])
    assert [c[2:4] for c in commands] == [bytes((0x80 if i == len(commands) - 1 else 0, i))
                                          for i in range(len(commands))]
    install = _b(vector["install_for_load"])
    assert block_hash in install and _b(DAP["load_file_aid"]) in install


def _ssd_card(privileges: bytes, extra: list[SdKey], isd_keys: list[SdKey] | None = None,
              ) -> tuple[Card, Any]:
    card = Card(MemoryBacking(), gp_profile(IsdSetup(keys=isd_keys or gp_test_keys())))
    card.power_on()
    isd = scp03_client(card)
    ssd_aid = bytes.fromhex("A000000151535344")
    isd.install(bytes.fromhex("A0000001515350"), bytes.fromhex("A000000151535041"), ssd_aid,
                privileges=privileges)
    data = keys_dgi([SdKey(0x30, kid, KeyType.AES, SSD_KEY) for kid in (1, 2, 3)])
    for key in extra:
        data += keys_dgi([key])
    isd.personalize(ssd_aid, data)
    return card, isd


def _hello(card: Card) -> bytes:
    selected = card.transmit(bytes.fromhex("00A4040007F0534847A0010100"))
    if selected[-2:] != b"\x90\x00":
        return selected
    return card.transmit(bytes.fromhex("8000000000"))


@pytest.mark.parametrize("vector", DAP["sets"], ids=lambda v: v["id"])
def test_dap_on_the_card(vector: dict[str, Any]) -> None:
    public = _dap_public(vector["algorithm"])
    key = (SdKey.ec_public(0x01, KeyId.DAP, public) if vector["algorithm"].startswith("ecdsa")
           else SdKey.rsa_public(0x01, KeyId.DAP, public))
    card, isd = _ssd_card(privileges_of(Privilege.SECURITY_DOMAIN, Privilege.MANDATED_DAP),
                          [key])
    assert isd.send(_b(vector["install_for_load"])).sw == 0x9000
    for command in vector["load_commands"]:
        assert isd.send(_b(command)).sw == 0x9000
    isd.install(_b(DAP["load_file_aid"]), _b(DAP["module_aid"]),
                bytes.fromhex("F0534847A00101"))
    assert _hello(card) == b"hello\x90\x00"


# --- tokens -----------------------------------------------------------------------------


TOKENS = _load("tokens.json")


def _token_public(algorithm: str) -> Any:
    if algorithm.startswith("ecdsa"):
        return _scalar_key(TOKENS["issuer_private_scalar"]).public_key()
    return _rsa_public(TOKENS["rsa_private_key_pem"])


@pytest.mark.parametrize("vector", TOKENS["sets"], ids=lambda v: v["id"])
def test_tokens_independently(vector: dict[str, Any]) -> None:
    command = _b(vector["command"])
    token_data, token = _b(vector["token_data"]), _b(vector["token"])
    fields = token_data[3:]
    assert token_data[:3] == bytes((vector["p1"], vector["p2"], len(fields)))
    assert command[2:4] == token_data[:2]
    data = _apdu_data(command)
    if command[1] == 0xE4:  # DELETE: the token is in tag 9E after the signed fields
        assert data == fields + _ber(b"\x9E", token)
    else:  # INSTALL: the token is the last LV field
        length = bytes((len(token),)) if len(token) < 0x80 else b"\x81" + bytes((len(token),))
        assert data == fields + length + token
    assert _verify(vector["algorithm"], _token_public(vector["algorithm"]), token_data, token)
    tampered = bytearray(token_data)
    tampered[-1] ^= 1
    assert not _verify(vector["algorithm"], _token_public(vector["algorithm"]),
                       bytes(tampered), token)


@pytest.mark.parametrize("algorithm", ["ecdsa-p256-sha256", "rsa-pkcs1v15-sha256"])
def test_tokens_on_the_card(algorithm: str) -> None:
    public = _token_public(algorithm)
    token_key = (SdKey.ec_public(0x01, KeyId.TOKEN, public) if algorithm.startswith("ecdsa")
                 else SdKey.rsa_public(0x01, KeyId.TOKEN, public))
    card, _ = _ssd_card(privileges_of(Privilege.SECURITY_DOMAIN, Privilege.DELEGATED_MANAGEMENT),
                        [], [*gp_test_keys(), token_key])
    from smarthydra.card.gp.client import GpClient, load_commands
    from smarthydra.card.gp.management import LoadFile

    ssd = GpClient(card.transmit)
    ssd.select(bytes.fromhex("A000000151535344"))
    ssd.open_scp03(Scp03StaticKeys(SSD_KEY, SSD_KEY, SSD_KEY, 0x30))
    sets = {v["id"].removesuffix("_" + algorithm): v for v in TOKENS["sets"]
            if v["algorithm"] == algorithm}
    assert ssd.send(_b(sets["install_for_load"]["command"])).sw == 0x9000
    for command in load_commands(LoadFile({}, _b(DAP["load_file_data_block"]))):
        assert ssd.send(command).sw == 0x9000
    for name in ("install_and_make_selectable", "extradition", "registry_update"):
        assert ssd.send(_b(sets[name]["command"])).sw == 0x9000, name
    assert _hello(card) == b"hello\x90\x00"
    ssd.select(bytes.fromhex("A000000151535344"))
    ssd.open_scp03(Scp03StaticKeys(SSD_KEY, SSD_KEY, SSD_KEY, 0x30))
    forged = bytearray(_b(sets["delete_related"]["command"]))
    forged[-3] ^= 1  # a bit of the token
    assert ssd.send(bytes(forged)).sw == 0x6982
    assert ssd.send(_b(sets["delete_related"]["command"])).sw == 0x9000
    assert _hello(card)[-2:] == b"\x6A\x82"

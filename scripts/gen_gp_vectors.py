"""Generate the GlobalPlatform vectors that have no public source: tests/card/vectors/*.json.

* ``scp11b.json``: SCP11b card side with our own keys (P-256; AES-128/192/256 session keys):
  INTERNAL AUTHENTICATE and the card's answer (ePK.SD, receipt), the shared secrets, session
  keys, and one protected command/response pair (GET DATA 66).
* ``tokens.json``: delegated-management tokens (GP 2.3.1 C.4.1) for INSTALL [for load],
  [for install and make selectable], [for extradition], [for registry update] and DELETE,
  signed ECDSA P-256/SHA-256 (RFC 6979 deterministic, raw r || s) and RSA PKCS#1 v1.5 SHA-256.
* ``receipts.json``: receipts (C.5.1): AES-CMAC over the confirmation data.
* ``dap.json``: a Load File Data Block (an applet package), its SHA-256 hash, DAP signatures
  (ECDSA and RSA) and the LOAD commands carrying the E2 DAP block and the C4 block.

Keys are fixed test values (the RSA key is kept from the previous run so that the files are
stable; delete ``dap.json`` to make a new one). Run from the repository root::

    .venv/bin/python scripts/gen_gp_vectors.py [--check]

``--check`` regenerates in memory and exits non-zero if a committed file differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from smarthydra.card.card import Card
from smarthydra.card.gp import management as gpm
from smarthydra.card.gp.certificates import point_bytes
from smarthydra.card.gp.client import (
    GpClient,
    delete_command,
    extradition_command,
    install_command,
    install_for_load_command,
    load_commands,
    registry_update_command,
)
from smarthydra.card.gp.keystore import SdKey
from smarthydra.card.gp.management import ISD_AID, KeyId
from smarthydra.card.gp.profile import IsdSetup, gp_profile, gp_test_keys
from smarthydra.card.gp.scp11 import (
    Scp11HostSession,
    Scp11Variant,
    derive_scp11_keys,
    ecka,
)
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.package import AppletPackage

OUT = Path(__file__).resolve().parent.parent / "tests" / "card" / "vectors"
SD_SCALAR = bytes.fromhex("5A" * 31 + "01")
OCE_EPHEMERAL_SCALAR = bytes.fromhex("6B" * 31 + "02")
CARD_EPHEMERAL_SCALAR = bytes.fromhex("7C" * 31 + "03")
ISSUER_SCALAR = bytes.fromhex("11" * 32)
DAP_SCALAR = bytes.fromhex("6E" * 32)
LOAD_FILE_AID = bytes.fromhex("F0534847A0")
MODULE_AID = bytes.fromhex("F0534847A001")
APP_AID = bytes.fromhex("F0534847A00101")
SSD_AID = bytes.fromhex("A000000151535344")
APPLET_SOURCE = '''
from smarthydra.card.applet import APDU, Applet


class HelloApplet(Applet):
    def process(self, apdu):
        if apdu.is_selecting:
            return None
        return b"hello"
'''

META = {"generator": "scripts/gen_gp_vectors.py",
        "standard": "GlobalPlatform Card Specification 2.3.1, Amendments D and F",
        "note": "our own keys; no public vectors exist for these constructions"}


def _h(data: bytes) -> str:
    return data.hex().upper()


def _key(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())


def _ecdsa(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    der = key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _rsa_key() -> rsa.RSAPrivateKey:
    existing = OUT / "dap.json"
    if existing.exists():
        pem = json.loads(existing.read_text())["rsa_private_key_pem"]
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _rsa_token_key() -> rsa.RSAPrivateKey:
    """RSA-1024: a token travels in one short APDU, so a 2048-bit signature does not fit."""
    existing = OUT / "tokens.json"
    if existing.exists():
        pem = json.loads(existing.read_text())["rsa_private_key_pem"]
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _rsa(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


class _Rng:
    def __init__(self, value: bytes) -> None:
        self.value = value

    def random_bytes(self, n: int) -> bytes:
        return self.value[:n]


def scp11b() -> dict[str, Any]:
    sd = _key(SD_SCALAR)
    sets = []
    for key_length in (16, 24, 32):
        oce_ephemeral = _key(OCE_EPHEMERAL_SCALAR)
        host = Scp11HostSession(Scp11Variant.B, sd.public_key(), kvn=0x01,
                                ephemeral_key=oce_ephemeral, key_length=key_length)
        command = host.authenticate()
        card = Card(MemoryBacking(), gp_profile(IsdSetup(
            keys=[*gp_test_keys(), SdKey.ec_private(0x01, KeyId.SCP11B, sd)])),
            rng=_Rng(CARD_EPHEMERAL_SCALAR))
        card.power_on()
        client = GpClient(card.transmit)
        client.select()
        response = card.transmit(command)
        host.process_authenticate_response(response)
        card_ephemeral = _key(CARD_EPHEMERAL_SCALAR)
        sh_see = ecka(card_ephemeral, oce_ephemeral.public_key())
        sh_ss = ecka(sd, oce_ephemeral.public_key())
        keys = derive_scp11_keys(sh_see, sh_ss, key_length)
        plain = bytes.fromhex("80CA006600")
        wrapped = host.wrap(plain)
        wrapped_response = card.transmit(wrapped)
        plain_response = host.unwrap(wrapped_response)
        sets.append({
            "id": f"scp11b_p256_aes{key_length * 8}",
            "sd_private_scalar": _h(SD_SCALAR),
            "sd_public_key": _h(point_bytes(sd.public_key())),
            "oce_ephemeral_scalar": _h(OCE_EPHEMERAL_SCALAR),
            "card_ephemeral_scalar": _h(CARD_EPHEMERAL_SCALAR),
            "kvn": 1, "kid": 0x13, "key_length": key_length, "sd_aid": _h(ISD_AID),
            "select": _h(bytes.fromhex("00A4040008") + ISD_AID + b"\x00"),
            "internal_authenticate": _h(command),
            "response": _h(response),
            "sh_see": _h(sh_see), "sh_ss": _h(sh_ss),
            "receipt_key": _h(keys.receipt_key),
            "s_enc": _h(keys.session.s_enc), "s_mac": _h(keys.session.s_mac),
            "s_rmac": _h(keys.session.s_rmac), "s_dek": _h(keys.session.s_dek or b""),
            "steps": [{"plain": _h(plain), "wrapped": _h(wrapped),
                       "wrapped_response": _h(wrapped_response),
                       "plain_response": _h(plain_response.to_bytes())}],
        })
    return {"_meta": META, "sets": sets}


def _token_commands(signer: Callable[[bytes], bytes]) -> list[tuple[str, bytes]]:
    block_hash = gpm.load_file_data_block_hash(_package().encode())
    return [
        ("install_for_load", install_for_load_command(LOAD_FILE_AID, sd_aid=SSD_AID,
                                                      block_hash=block_hash,
                                                      token_signer=signer)),
        ("install_and_make_selectable", install_command(LOAD_FILE_AID, MODULE_AID, APP_AID,
                                                        params=b"\x01\x02",
                                                        token_signer=signer)),
        ("extradition", extradition_command(SSD_AID, APP_AID, token_signer=signer)),
        ("registry_update", registry_update_command(APP_AID, privileges=b"\x00\x00\x00",
                                                    token_signer=signer)),
        ("delete_related", delete_command(LOAD_FILE_AID, related=True, token_signer=signer)),
    ]


def tokens(rsa_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    issuer = _key(ISSUER_SCALAR)
    signers: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("ecdsa-p256-sha256", lambda d: _ecdsa(issuer, d)),
        ("rsa-pkcs1v15-sha256", lambda d: _rsa(rsa_key, d))]
    sets = []
    for algorithm, sign in signers:
        signed: list[bytes] = []  # token data, in the order the commands are built

        def recorder(data: bytes, sign: Callable[[bytes], bytes] = sign,
                     signed: list[bytes] = signed) -> bytes:
            signed.append(data)
            return sign(data)

        commands = _token_commands(recorder)
        for (name, command), data in zip(commands, signed, strict=True):
            sets.append({"id": f"{name}_{algorithm}", "algorithm": algorithm,
                         "p1": command[2], "p2": command[3],
                         "token_data": _h(data), "token": _h(sign(data)),
                         "command": _h(command)})
    return {"_meta": META, "issuer_private_scalar": _h(ISSUER_SCALAR),
            "issuer_public_key": _h(point_bytes(issuer.public_key())),
            "rsa_private_key_pem": rsa_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode(),
            "sets": sets}


def receipts() -> dict[str, Any]:
    key = bytes(range(0xA0, 0xB0))
    cud = bytes.fromhex("5348594452") + bytes.fromhex("0000000001")
    cases = [("load", 1, [LOAD_FILE_AID, SSD_AID]), ("install", 2, [LOAD_FILE_AID, APP_AID]),
             ("delete", 3, [LOAD_FILE_AID]), ("extradition", 0x1234, [SSD_AID, APP_AID, ISD_AID])]
    sets = [{"id": name, "receipt_key": _h(key), "confirmation_counter": counter,
             "card_unique_data": _h(cud), "aids": [_h(a) for a in aids],
             "confirmation_data": _h(gpm.confirmation_data(counter, cud, aids)),
             "receipt": _h(gpm.receipt(key, counter, cud, aids)),
             "response": _h(gpm.Confirmation(gpm.receipt(key, counter, cud, aids), counter,
                                             cud).encode())}
            for name, counter, aids in cases]
    return {"_meta": META, "sets": sets}


def _package() -> AppletPackage:
    return AppletPackage.build(APPLET_SOURCE, aid=LOAD_FILE_AID, name="hello",
                               applets={"HelloApplet": (MODULE_AID,)})


def dap(rsa_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    block = _package().encode()
    block_hash = gpm.load_file_data_block_hash(block)
    signer = _key(DAP_SCALAR)
    sets = []
    for algorithm, signature in (("ecdsa-p256-sha256", _ecdsa(signer, block_hash)),
                                 ("rsa-pkcs1v15-sha256", _rsa(rsa_key, block_hash))):
        load_file = gpm.LoadFile({SSD_AID: signature}, block)
        sets.append({"id": algorithm, "algorithm": algorithm, "sd_aid": _h(SSD_AID),
                     "signature": _h(signature), "load_file": _h(load_file.encode()),
                     "install_for_load": _h(install_for_load_command(
                         LOAD_FILE_AID, block_hash=block_hash)),
                     "load_commands": [_h(c) for c in load_commands(load_file)]})
    return {"_meta": META, "load_file_aid": _h(LOAD_FILE_AID), "module_aid": _h(MODULE_AID),
            "load_file_data_block": _h(block), "load_file_data_block_hash": _h(block_hash),
            "dap_private_scalar": _h(DAP_SCALAR),
            "dap_public_key": _h(point_bytes(signer.public_key())),
            "rsa_private_key_pem": rsa_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode(),
            "sets": sets}


def generate() -> dict[str, dict[str, Any]]:
    rsa_key = _rsa_key()
    return {"scp11b.json": scp11b(), "tokens.json": tokens(_rsa_token_key()),
            "receipts.json": receipts(), "dap.json": dap(rsa_key)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    files = generate()
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, doc in files.items():
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("stale vector files: " + ", ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print(f"wrote {len(files)} files to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

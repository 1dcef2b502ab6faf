"""In-card AES against published vectors: NIST SP 800-38B CMAC and GlobalPlatform key check
values (from ../shared/conformance/gp/scp_vectors.json), computed through key handles in
the signer applet over APDUs."""

from __future__ import annotations

import json

from smarthydra.card.examples import SIGNER_AID, SignerIns
from tests.conftest import conformance_path

from .helpers import example_card, select, send


def _vectors() -> dict:  # type: ignore[type-arg]
    return json.loads(conformance_path("gp", "scp_vectors.json").read_text())  # type: ignore[no-any-return]


def test_cmac_vectors_inside_the_card() -> None:
    vectors = _vectors()["cmac_aes_nist_sp800_38b"]["vectors"]
    card = example_card()
    select(card, SIGNER_AID)
    assert len(vectors) >= 12
    for vector in vectors:
        assert send(card, 0x80, SignerIns.SET_AES, data=bytes.fromhex(vector["key"])).sw == 0x9000
        mac = send(card, 0x80, SignerIns.CMAC, data=bytes.fromhex(vector["message"]), ne=256)
        assert mac.sw == 0x9000
        assert mac.data.hex().upper() == vector["output"], vector


def test_key_check_values_inside_the_card() -> None:
    vectors = _vectors()["aes_kcv"]
    card = example_card()
    select(card, SIGNER_AID)
    for vector in vectors:
        send(card, 0x80, SignerIns.SET_AES, data=bytes.fromhex(vector["key"]))
        # KCV: first 3 bytes of AES(key, 16 x 01): CBC with a zero IV over one block
        out = send(card, 0x80, SignerIns.CBC_ENCRYPT, data=bytes(16) + b"\x01" * 16, ne=256)
        assert out.data[:3].hex().upper() == vector["kcv"], vector

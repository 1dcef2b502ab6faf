"""Vending with the vending key inside a SoftHSM2 token."""

from __future__ import annotations

from typing import Any

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from smarthydra.crypto.softhsm import SoftHsmToken
from smarthydra.prepay.errors import StsKeyError
from smarthydra.prepay.sts_algorithms import BaseDate, EncryptionAlgorithm, KeyGenerationAlgorithm
from smarthydra.prepay.sts_tokens import CreditToken, decode_token, tid_for
from smarthydra.prepay.sts_vending import Pkcs11VendingKey, VendingServer
from tests.crypto.softhsm_fixtures import softhsm_token
from tests.prepay.helpers import METER, VK_DES, VK_HMAC, at, server

__all__ = ["softhsm_token"]

pytestmark = pytest.mark.softhsm


def _session(token: SoftHsmToken) -> Any:
    lib = pkcs11.lib(str(token.module_path))
    return lib.get_token(token_label=token.token_label).open(user_pin=token.user_pin, rw=True)


@pytest.mark.parametrize("ea", ["07", "11"])
def test_dkga04_in_token_matches_soft_key(softhsm_token: SoftHsmToken, ea: str) -> None:
    with _session(softhsm_token) as session:
        key = Pkcs11VendingKey.create(session, "vk", VK_HMAC)
        hsm = VendingServer(key, KeyGenerationAlgorithm.DKGA04, EncryptionAlgorithm(ea),
                            BaseDate.Y2014, random_nibble=lambda: 0)
        soft = server("04", ea, 2014)
        assert hsm.decoder_key(METER) == soft.decoder_key(METER)
        token = CreditToken(0, tid_for(at(2020), BaseDate.Y2014), 42)
        digits = hsm.vend(METER, token).digits
        assert decode_token(digits, soft.decoder_key(METER), soft.algorithm) == token
        # the vending key cannot be read back out of the token
        obj = session.get_key(ObjectClass.SECRET_KEY, label="vk/hmac")
        assert obj[Attribute.SENSITIVE] and not obj[Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.PKCS11Error):
            obj[Attribute.VALUE]


def test_dkga02_des_step_runs_in_token_but_the_final_xor_is_refused(
        softhsm_token: SoftHsmToken) -> None:
    with _session(softhsm_token) as session:
        key = Pkcs11VendingKey.create(session, "vk2", VK_DES)
        assert key.des_encrypt(bytes(8)) == server().key.des_encrypt(bytes(8))
        hsm = VendingServer(key, KeyGenerationAlgorithm.DKGA02, EncryptionAlgorithm.STA,
                            BaseDate.Y1993)
        with pytest.raises(StsKeyError, match="DKGA-04"):
            hsm.decoder_key(METER)


def test_missing_vending_key_is_a_specific_error(softhsm_token: SoftHsmToken) -> None:
    with _session(softhsm_token) as session, pytest.raises(StsKeyError, match="no vending key"):
        Pkcs11VendingKey(session, "absent")

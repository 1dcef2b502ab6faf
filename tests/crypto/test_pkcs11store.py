"""Pkcs11Keystore specifics, checked from an independent session on the same token."""

from __future__ import annotations

from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from smarthydra.crypto import primitives, softhsm
from smarthydra.crypto.keystore import KeystoreError, KeyUsage
from smarthydra.crypto.pkcs11store import Pkcs11Keystore
from tests.crypto.softhsm_fixtures import USER_PIN

pytestmark = pytest.mark.softhsm


def _objects(token: softhsm.SoftHsmToken, object_class: ObjectClass) -> list[object]:
    """What is on the token, seen from a fresh session (not the keystore's)."""
    with _independent_session(token) as session:
        return [
            (o[Attribute.LABEL], o) for o in session.get_objects({Attribute.CLASS: object_class})
        ]


def _independent_session(token: softhsm.SoftHsmToken) -> pkcs11.Session:
    library = pkcs11.lib(str(token.module_path))
    handle = library.get_token(token_label=token.token_label)
    try:
        return handle.open(user_pin=USER_PIN)
    except pkcs11.UserAlreadyLoggedIn:  # login is per process; a keystore is open
        return handle.open()


def test_generated_keys_are_sensitive_and_not_extractable(
    softhsm_token: softhsm.SoftHsmToken,
) -> None:
    with Pkcs11Keystore(softhsm_token.module_path, softhsm_token.token_label, USER_PIN) as store:
        store.generate("ds", KeyUsage.DIGITAL_SIGNATURE)
        store.import_private_key(
            "imported", primitives.generate_private_key(), KeyUsage.KEY_AGREEMENT
        )
        with _independent_session(softhsm_token) as session:
            for label in ("ds", "imported"):
                key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                assert key[Attribute.SENSITIVE] is True
                assert key[Attribute.EXTRACTABLE] is False
                assert key[Attribute.TOKEN] is True
                with pytest.raises(pkcs11.AttributeSensitive):
                    key[Attribute.VALUE]


def test_destroy_removes_both_halves_from_the_token(softhsm_token: softhsm.SoftHsmToken) -> None:
    store = Pkcs11Keystore(softhsm_token.module_path, softhsm_token.token_label, USER_PIN)
    store.generate("device-ca", KeyUsage.DIGITAL_SIGNATURE)
    store.generate("kept", KeyUsage.KEY_AGREEMENT)
    labels = lambda c: sorted(label for label, _ in _objects(softhsm_token, c))  # noqa: E731
    assert labels(ObjectClass.PRIVATE_KEY) == ["device-ca", "kept"]
    assert labels(ObjectClass.PUBLIC_KEY) == ["device-ca", "kept"]
    store.destroy("device-ca")
    store.close()
    assert labels(ObjectClass.PRIVATE_KEY) == ["kept"]
    assert labels(ObjectClass.PUBLIC_KEY) == ["kept"]


def test_ecdh_leaves_no_secret_objects_behind(softhsm_token: softhsm.SoftHsmToken) -> None:
    with Pkcs11Keystore(softhsm_token.module_path, softhsm_token.token_label, USER_PIN) as store:
        store.generate("ka", KeyUsage.KEY_AGREEMENT)
        for _ in range(3):
            store.derive_shared_secret("ka", primitives.generate_private_key().public_key())
        assert _objects(softhsm_token, ObjectClass.SECRET_KEY) == []


def test_unknown_token_and_module(softhsm_token: softhsm.SoftHsmToken, tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="no PKCS#11 token labelled 'absent'"):
        Pkcs11Keystore(softhsm_token.module_path, "absent", USER_PIN)
    with pytest.raises(KeystoreError, match="cannot load PKCS#11 module"):
        Pkcs11Keystore(tmp_path / "nonexistent.so", "x", USER_PIN)


def test_closed_store_refuses_work(softhsm_token: softhsm.SoftHsmToken) -> None:
    store = Pkcs11Keystore(softhsm_token.module_path, softhsm_token.token_label, USER_PIN)
    store.generate("k", KeyUsage.DIGITAL_SIGNATURE)
    store.close()
    store.close()  # idempotent
    with pytest.raises(KeystoreError, match="closed"):
        store.sign("k", b"x")
    with pytest.raises(KeystoreError, match="closed"):
        store.labels()


def test_init_token_reports_failure(tmp_path: Path) -> None:
    if softhsm.unavailable_reason():
        pytest.skip(softhsm.unavailable_reason() or "")
    with pytest.raises(KeystoreError, match="softhsm2-util --init-token failed"):
        softhsm.init_token(tmp_path, "t", "1", "2")  # PINs shorter than SoftHSM2 allows


def test_second_store_in_process_shares_login_but_checks_pin(
    softhsm_token: softhsm.SoftHsmToken,
) -> None:
    from smarthydra.crypto.keystore import KeystoreAuthenticationError

    module, label = softhsm_token.module_path, softhsm_token.token_label
    with Pkcs11Keystore(module, label, USER_PIN) as first:
        first.generate("k", KeyUsage.DIGITAL_SIGNATURE)
        with pytest.raises(KeystoreAuthenticationError, match="wrong user PIN"):
            Pkcs11Keystore(module, label, "999999")
        with Pkcs11Keystore(module, label, USER_PIN) as second:
            assert second.labels() == ["k"]
            public = first.public_key("k")
            assert primitives.ecdsa_verify(public, b"m", second.sign("k", b"m"))

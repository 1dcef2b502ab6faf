"""One test suite for every Keystore implementation (soft file, soft in-memory, PKCS#11)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives, softhsm
from smarthydra.crypto.keystore import (
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreAuthenticationError,
    KeystoreError,
    KeyUsage,
    KeyUsageError,
)
from smarthydra.crypto.pkcs11store import Pkcs11Keystore
from smarthydra.crypto.softstore import SoftKeystore
from tests.conftest import conformance_path
from tests.crypto.softhsm_fixtures import SO_PIN, USER_PIN, require_softhsm

DS = KeyUsage.DIGITAL_SIGNATURE
KA = KeyUsage.KEY_AGREEMENT
FAST_SCRYPT = 2**10  # tests only; the default is 2**15


@dataclass
class StoreMaker:
    """Opens (and re-opens) one keystore; ``reopen`` is the persistence check."""

    kind: str
    opener: Callable[[], Keystore]
    wrong_secret: Callable[[], Keystore] | None
    persistent: bool
    opened: list[Keystore] = field(default_factory=list)

    def open(self) -> Keystore:
        store = self.opener()
        self.opened.append(store)
        return store

    def reopen(self, store: Keystore) -> Keystore:
        store.close()
        return self.open()


@pytest.fixture(params=["soft-file", "soft-memory", "pkcs11"])
def maker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    kind = request.param
    if kind == "soft-file":
        path = tmp_path / "keys.json"
        m = StoreMaker(
            kind,
            lambda: SoftKeystore(path, b"correct horse", scrypt_n=FAST_SCRYPT),
            lambda: SoftKeystore(path, b"wrong horse", scrypt_n=FAST_SCRYPT),
            persistent=True,
        )
    elif kind == "soft-memory":
        shared = SoftKeystore(None, b"")
        m = StoreMaker(kind, lambda: shared, None, persistent=True)
    else:
        require_softhsm()
        token = softhsm.init_token(tmp_path / "hsm", "suite", USER_PIN, SO_PIN)
        softhsm.activate(token)
        m = StoreMaker(
            kind,
            lambda: Pkcs11Keystore(token.module_path, "suite", USER_PIN),
            lambda: Pkcs11Keystore(token.module_path, "suite", "000000"),
            persistent=True,
        )
    yield m
    for store in m.opened:
        store.close()


def test_generate_sign_verify(maker: StoreMaker) -> None:
    store = maker.open()
    public = store.generate("supplier-ds", DS)
    assert store.public_key("supplier-ds").public_numbers() == public.public_numbers()
    assert store.usage("supplier-ds") is DS
    signature = store.sign("supplier-ds", b"critical command")
    assert len(signature) == 64
    assert primitives.ecdsa_verify(public, b"critical command", signature)
    assert not primitives.ecdsa_verify(public, b"critical commanD", signature)


def test_signatures_are_randomised_but_all_verify(maker: StoreMaker) -> None:
    store = maker.open()
    public = store.generate("k", DS)
    signatures = {store.sign("k", b"same message") for _ in range(3)}
    assert len(signatures) == 3
    assert all(primitives.ecdsa_verify(public, b"same message", s) for s in signatures)


def test_ecdh_agreement_with_an_outside_party(maker: StoreMaker) -> None:
    store = maker.open()
    public = store.generate("acb-ka", KA)
    outside = primitives.generate_private_key()
    z = store.derive_shared_secret("acb-ka", outside.public_key())
    assert len(z) == 32
    assert z == primitives.ecdh(outside, public)


def test_ecdh_agreement_between_two_stores(maker: StoreMaker, tmp_path: Path) -> None:
    ours = maker.open()
    theirs = SoftKeystore(None, b"")
    ours_public = ours.generate("device-ka", KA)
    theirs_public = theirs.generate("supplier-ka", KA)
    assert ours.derive_shared_secret("device-ka", theirs_public) == theirs.derive_shared_secret(
        "supplier-ka", ours_public
    )


def test_import_published_key_reproduces_gbcs_vector(maker: StoreMaker) -> None:
    """The GBCS 18.4 ACB KA key imported into the store agrees with Device A's public key."""
    store = maker.open()
    acb = primitives.private_key_from_scalar(
        bytes.fromhex("E4A6CFB431471CFCAE491FD566D19C87082CF9FA7722D7FA24B2B3F5669DBEFB")
    )
    device_a = primitives.public_key_from_xy(
        bytes.fromhex(
            "2DB45A3F21889438B42C8F464C75292BACF5FDDB5DA0B492501B299CBFE92D8F"
            "DB90FC8FF4026129838B1BCAD1402CAE47FE7D8084E409A41AFCE16D63579C5F"
        )
    )
    public = store.import_private_key("acb-ka", acb, KA)
    assert public.public_numbers() == acb.public_key().public_numbers()
    assert store.public_key("acb-ka").public_numbers() == acb.public_key().public_numbers()
    assert store.derive_shared_secret("acb-ka", device_a) == primitives.ecdh(acb, device_a)


def test_import_rtds_signing_key(maker: StoreMaker) -> None:
    path = conformance_path("gbcs", "rtds-keystore", "90b3d51f30000001-ds.key")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    store = maker.open()
    store.import_private_key("recovery-ds", key, DS)
    signature = store.sign("recovery-ds", b"anchor update")
    assert primitives.ecdsa_verify(key.public_key(), b"anchor update", signature)


def test_usage_is_enforced(maker: StoreMaker) -> None:
    store = maker.open()
    store.generate("ds", DS)
    ka_public = store.generate("ka", KA)
    with pytest.raises(KeyUsageError, match="cannot sign"):
        store.sign("ka", b"x")
    with pytest.raises(KeyUsageError, match="cannot do key agreement"):
        store.derive_shared_secret("ds", ka_public)


def test_unknown_labels(maker: StoreMaker) -> None:
    store = maker.open()
    for operation in (
        lambda: store.sign("nope", b"x"),
        lambda: store.public_key("nope"),
        lambda: store.usage("nope"),
        lambda: store.destroy("nope"),
        lambda: store.derive_shared_secret("nope", primitives.generate_private_key().public_key()),
    ):
        with pytest.raises(KeyNotFound, match="'nope'"):
            operation()


def test_labels_and_duplicates(maker: StoreMaker) -> None:
    store = maker.open()
    assert store.labels() == []
    store.generate("b", DS)
    store.generate("a", KA)
    assert store.labels() == ["a", "b"]
    assert "a" in store
    assert "c" not in store
    with pytest.raises(KeyExists):
        store.generate("a", DS)
    with pytest.raises(KeyExists):
        store.import_private_key("b", primitives.generate_private_key(), DS)
    with pytest.raises(KeystoreError, match="empty"):
        store.generate("", DS)
    assert store.labels() == ["a", "b"]


def test_import_rejects_other_curves(maker: StoreMaker) -> None:
    store = maker.open()
    with pytest.raises(primitives.InvalidKey):
        store.import_private_key("p384", ec.generate_private_key(ec.SECP384R1()), DS)
    assert "p384" not in store


def test_destroy(maker: StoreMaker) -> None:
    store = maker.open()
    store.generate("doomed", DS)
    store.generate("kept", KA)
    store.destroy("doomed")
    assert store.labels() == ["kept"]
    with pytest.raises(KeyNotFound):
        store.sign("doomed", b"x")
    store = maker.reopen(store)
    assert store.labels() == ["kept"]
    # the label can be reused after destruction
    store.generate("doomed", KA)
    assert store.usage("doomed") is KA


def test_persistence_across_reopen(maker: StoreMaker) -> None:
    store = maker.open()
    ds_public = store.generate("ds", DS)
    ka_public = store.generate("ka", KA)
    peer = primitives.generate_private_key()
    z = store.derive_shared_secret("ka", peer.public_key())
    store = maker.reopen(store)
    assert store.labels() == ["ds", "ka"]
    assert store.usage("ds") is DS
    assert store.usage("ka") is KA
    assert store.public_key("ds").public_numbers() == ds_public.public_numbers()
    assert store.public_key("ka").public_numbers() == ka_public.public_numbers()
    assert primitives.ecdsa_verify(ds_public, b"m", store.sign("ds", b"m"))
    assert store.derive_shared_secret("ka", peer.public_key()) == z


def test_wrong_secret(maker: StoreMaker) -> None:
    if maker.wrong_secret is None:
        pytest.skip("an in-memory store has no passphrase to get wrong")
    store = maker.open()
    store.generate("k", DS)
    store.close()
    with pytest.raises(KeystoreAuthenticationError, match="wrong"):
        maker.wrong_secret()
    # the right secret still opens it, keys intact
    assert maker.open().labels() == ["k"]

"""A keystore on a PKCS#11 token (tested against SoftHSM2).

Private keys are generated on the token as sensitive, non-extractable token objects. Signing
uses CKM_ECDSA over a SHA-256 digest computed here (SoftHSM2 lacks CKM_ECDSA_SHA256); ECDH uses
CKM_ECDH1_DERIVE with CKD_NULL into a session-only generic secret that is extractable, so the
shared secret Z leaves the token and the private key never does. Usage is enforced twice: by
the token (CKA_SIGN / CKA_DERIVE) and here, so the error is a clear :class:`KeyUsageError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pkcs11
from asn1crypto import core as asn1
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import KDF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import (
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreAuthenticationError,
    KeystoreError,
    KeyUsage,
    KeyUsageError,
)

_EC_PARAMS = encode_named_curve_parameters("secp256r1")

# (module, token label) -> SHA-256 of the PIN that logged this process in.
_LOGINS: dict[tuple[str, str], bytes] = {}


def _usage_template(usage: KeyUsage) -> dict[Attribute, Any]:
    signing = usage is KeyUsage.DIGITAL_SIGNATURE
    return {Attribute.SIGN: signing, Attribute.DERIVE: not signing}


def _protected_private_template(label: str, usage: KeyUsage) -> dict[Attribute, Any]:
    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.LABEL: label,
        Attribute.ID: label.encode(),
        **_usage_template(usage),
    }


def _public_template(label: str, usage: KeyUsage) -> dict[Attribute, Any]:
    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: False,
        Attribute.LABEL: label,
        Attribute.ID: label.encode(),
        Attribute.VERIFY: usage is KeyUsage.DIGITAL_SIGNATURE,
        Attribute.DERIVE: False,
    }


def _uncompressed_point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class Pkcs11Keystore(Keystore):
    """Named P-256 key pairs on the PKCS#11 token labelled ``token_label``.

    One read-write user session is held open until :meth:`close`. A wrong PIN raises
    :class:`KeystoreAuthenticationError`; a missing token or module raises
    :class:`KeystoreError`.
    """

    def __init__(self, module_path: str | Path, token_label: str, user_pin: str) -> None:
        self.module_path = str(module_path)
        self.token_label = token_label
        try:
            library = pkcs11.lib(self.module_path)
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            raise KeystoreError(f"cannot load PKCS#11 module {self.module_path}: {exc}") from None
        try:
            token = library.get_token(token_label=token_label)
        except pkcs11.NoSuchToken:
            raise KeystoreError(f"no PKCS#11 token labelled {token_label!r}") from None
        except pkcs11.MultipleTokensReturned:
            raise KeystoreError(f"more than one PKCS#11 token labelled {token_label!r}") from None
        key = (self.module_path, token_label)
        try:
            self._session = token.open(user_pin=user_pin, rw=True)
            _LOGINS[key] = hashlib.sha256(user_pin.encode()).digest()
        except pkcs11.UserAlreadyLoggedIn:
            # PKCS#11 login state belongs to the whole process: another keystore here has
            # logged in already, so the token cannot check this PIN; we compare it instead.
            known = _LOGINS.get(key)
            if known is None or not hmac.compare_digest(
                known, hashlib.sha256(user_pin.encode()).digest()
            ):
                raise KeystoreAuthenticationError(
                    f"wrong user PIN for PKCS#11 token {token_label!r}"
                ) from None
            self._session = token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
            raise KeystoreAuthenticationError(
                f"wrong user PIN for PKCS#11 token {token_label!r}"
            ) from None
        except pkcs11.PinLocked:
            raise KeystoreAuthenticationError(
                f"the user PIN of PKCS#11 token {token_label!r} is locked"
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise KeystoreError(f"cannot open a session on {token_label!r}: {exc!r}") from None
        self._closed = False

    # --- object lookup ------------------------------------------------------------------

    def _find(self, label: str, object_class: ObjectClass) -> list[Any]:
        if self._closed:
            raise KeystoreError("this PKCS#11 keystore has been closed")
        try:
            return list(
                self._session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label})
            )
        except pkcs11.PKCS11Error as exc:
            raise KeystoreError(f"token search for {label!r} failed: {exc!r}") from None

    def _private(self, label: str) -> Any:
        found = self._find(label, ObjectClass.PRIVATE_KEY)
        if not found:
            raise KeyNotFound(label)
        return found[0]

    # --- Keystore -----------------------------------------------------------------------

    def _check_new(self, label: str) -> None:
        if not label:
            raise KeystoreError("a key label must not be empty")
        if self._find(label, ObjectClass.PRIVATE_KEY) or self._find(label, ObjectClass.PUBLIC_KEY):
            raise KeyExists(label)

    def generate(self, label: str, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        self._check_new(label)
        try:
            self._session.generate_keypair(
                KeyType.EC,
                0,
                store=True,
                public_template={Attribute.EC_PARAMS: _EC_PARAMS, **_public_template(label, usage)},
                private_template=_protected_private_template(label, usage),
            )
        except pkcs11.PKCS11Error as exc:
            raise KeystoreError(
                f"key generation for {label!r} failed on the token: {exc!r}"
            ) from None
        return self.public_key(label)

    def import_private_key(
        self, label: str, key: ec.EllipticCurvePrivateKey, usage: KeyUsage
    ) -> ec.EllipticCurvePublicKey:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise primitives.InvalidKey("only P-256 private keys can be imported")
        self._check_new(label)
        scalar = key.private_numbers().private_value.to_bytes(primitives.COORDINATE_SIZE, "big")
        point = asn1.OctetString(_uncompressed_point(key.public_key())).dump()
        private_object = None
        try:
            private_object = self._session.create_object(
                {
                    Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                    Attribute.KEY_TYPE: KeyType.EC,
                    Attribute.EC_PARAMS: _EC_PARAMS,
                    Attribute.VALUE: scalar,
                    **_protected_private_template(label, usage),
                }
            )
            self._session.create_object(
                {
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                    Attribute.KEY_TYPE: KeyType.EC,
                    Attribute.EC_PARAMS: _EC_PARAMS,
                    Attribute.EC_POINT: point,
                    **_public_template(label, usage),
                }
            )
        except pkcs11.PKCS11Error as exc:
            if private_object is not None:
                private_object.destroy()
            raise KeystoreError(f"importing {label!r} into the token failed: {exc!r}") from None
        return key.public_key()

    def public_key(self, label: str) -> ec.EllipticCurvePublicKey:
        found = self._find(label, ObjectClass.PUBLIC_KEY)
        if not found:
            raise KeyNotFound(label)
        encoded = found[0][Attribute.EC_POINT]
        # CKA_EC_POINT is a DER OCTET STRING around the X9.62 point; some tokens omit the wrapper.
        if len(encoded) == 2 * primitives.COORDINATE_SIZE + 3 and encoded[0] == 0x04:
            encoded = asn1.OctetString.load(encoded).native
        return primitives.public_key_from_xy(encoded)

    def usage(self, label: str) -> KeyUsage:
        private = self._private(label)
        return KeyUsage.DIGITAL_SIGNATURE if private[Attribute.SIGN] else KeyUsage.KEY_AGREEMENT

    def sign(self, label: str, data: bytes) -> bytes:
        private = self._private(label)
        if not private[Attribute.SIGN]:
            raise KeyUsageError(f"key {label!r} is a key-agreement key and cannot sign")
        digest = hashlib.sha256(data).digest()
        try:
            signature: bytes = private.sign(digest, mechanism=Mechanism.ECDSA)
        except pkcs11.PKCS11Error as exc:
            raise KeystoreError(f"signing with {label!r} failed on the token: {exc!r}") from None
        return signature  # PKCS#11 returns ECDSA signatures as r || s already

    def derive_shared_secret(self, label: str, peer: ec.EllipticCurvePublicKey) -> bytes:
        private = self._private(label)
        if not private[Attribute.DERIVE]:
            raise KeyUsageError(f"key {label!r} is a signing key and cannot do key agreement")
        if not isinstance(peer, ec.EllipticCurvePublicKey) or peer.curve.name != "secp256r1":
            raise primitives.InvalidKey("the peer key for ECDH must be a P-256 public key")
        try:
            secret = private.derive_key(
                KeyType.GENERIC_SECRET,
                8 * primitives.COORDINATE_SIZE,
                mechanism=Mechanism.ECDH1_DERIVE,
                mechanism_param=(KDF.NULL, None, _uncompressed_point(peer)),
                template={
                    Attribute.TOKEN: False,
                    Attribute.SENSITIVE: False,
                    Attribute.EXTRACTABLE: True,
                },
            )
            z: bytes = secret[Attribute.VALUE]
            secret.destroy()
        except pkcs11.PKCS11Error as exc:
            raise KeystoreError(f"ECDH with {label!r} failed on the token: {exc!r}") from None
        return z

    def destroy(self, label: str) -> None:
        privates = self._find(label, ObjectClass.PRIVATE_KEY)
        if not privates:
            raise KeyNotFound(label)
        try:
            for obj in privates + self._find(label, ObjectClass.PUBLIC_KEY):
                obj.destroy()
        except pkcs11.PKCS11Error as exc:
            raise KeystoreError(f"destroying {label!r} failed on the token: {exc!r}") from None

    def labels(self) -> list[str]:
        if self._closed:
            raise KeystoreError("this PKCS#11 keystore has been closed")
        found = self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        return sorted({str(obj[Attribute.LABEL]) for obj in found})

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # the library may already have been re-initialised under us
            with contextlib.suppress(pkcs11.PKCS11Error):
                self._session.close()

    def __enter__(self) -> Pkcs11Keystore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

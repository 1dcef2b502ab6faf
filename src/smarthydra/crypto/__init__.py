"""Cryptographic primitives and keystores (soft and PKCS#11)."""

from smarthydra.crypto.keystore import (
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreAuthenticationError,
    KeystoreError,
    KeyUsage,
    KeyUsageError,
)

__all__ = [
    "KeyExists",
    "KeyNotFound",
    "KeyUsage",
    "KeyUsageError",
    "Keystore",
    "KeystoreAuthenticationError",
    "KeystoreError",
]

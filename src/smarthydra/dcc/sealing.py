"""Secrets sealed at rest in the DCC database: one column value under AES-256-GCM.

Some columns hold secrets a database dump must not give away (a comms hub's HAN backup holds
every joined device's link key). Such a value is stored as ``sealed-v1:`` followed by
base64(nonce || ciphertext || tag), encrypted with AESGCM from ``cryptography`` under a 32-byte
storage key kept in a file outside the database. The associated data names the column and the
row (``device_logs.han_backup:<hub EUI>``), so a sealed value copied into another row, or
another column, does not open. This is plain AEAD use: nothing is built beyond it.

A value without the prefix was written before sealing existed; opening it returns it as it is
and says so, so that the caller can seal it on its next write.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smarthydra.card.rng import OsRandom, RandomSource

SEALED_PREFIX = "sealed-v1:"
KEY_SIZE = 32  # AES-256
NONCE_SIZE = 12  # the 96-bit nonce GCM is designed for; random, so never reused in practice
TAG_SIZE = 16


class SealError(Exception):
    """Base class for failures of sealed storage."""


class SealKeyError(SealError):
    """The storage key file is missing, has the wrong size, or is readable by others."""


class SealBroken(SealError):
    """A sealed value does not open: wrong key, moved to another row, or altered."""


class SealKeyMissing(SealError):
    """A sealed value was found but no storage key is configured to open it."""


@dataclass(frozen=True)
class Opened:
    """A column value as opened: the plaintext, and whether it had been sealed (False means a
    value written before sealing, which should be sealed on its next write)."""

    value: str
    was_sealed: bool


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


def _associated_data(column: str, row: str) -> bytes:
    return f"{column}:{row}".encode()


class ColumnSeal:
    """Seals and opens single column values under one AES-256 storage key."""

    def __init__(self, key: bytes, random: RandomSource | None = None) -> None:
        if len(key) != KEY_SIZE:
            raise SealKeyError(f"a storage key is {KEY_SIZE} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self._random: RandomSource = random or OsRandom()

    def __repr__(self) -> str:  # never show the key
        return "ColumnSeal(<key hidden>)"

    def seal(self, value: str, *, column: str, row: str) -> str:
        """``value`` sealed for the cell (``column``, ``row``): ``sealed-v1:`` + base64."""
        nonce = self._random.random_bytes(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise SealError(f"the random source gave {len(nonce)} bytes, not {NONCE_SIZE}")
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), _associated_data(column, row))
        return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def unseal(self, value: str, *, column: str, row: str) -> Opened:
        """The plaintext of a value read from (``column``, ``row``).

        A value without the ``sealed-v1:`` prefix is returned unchanged with ``was_sealed``
        False. A sealed value that does not authenticate raises :class:`SealBroken`.
        """
        if not is_sealed(value):
            return Opened(value, was_sealed=False)
        where = f"{column} of row {row}"
        try:
            raw = base64.b64decode(value[len(SEALED_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise SealBroken(f"the sealed value in {where} is not valid base64") from None
        if len(raw) < NONCE_SIZE + TAG_SIZE:
            raise SealBroken(f"the sealed value in {where} is too short ({len(raw)} bytes)")
        try:
            plain = self._aead.decrypt(
                raw[:NONCE_SIZE], raw[NONCE_SIZE:], _associated_data(column, row)
            )
        except InvalidTag:
            raise SealBroken(
                f"the sealed value in {where} does not open with this storage key "
                "(wrong key, value moved from another row, or altered)"
            ) from None
        try:
            return Opened(plain.decode("utf-8"), was_sealed=True)
        except UnicodeDecodeError:  # authenticated, so only a writer bug could cause this
            raise SealBroken(f"the sealed value in {where} is not UTF-8 text") from None

    @classmethod
    def from_file(cls, path: Path, random: RandomSource | None = None) -> ColumnSeal:
        """The storage key from ``path``: 32 raw bytes or 64 hex digits (surrounding whitespace
        allowed). Refuses files that group or others may read or write."""
        try:
            info = path.stat()
        except OSError as exc:
            raise SealKeyError(f"cannot read the storage key file {path}: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise SealKeyError(f"the storage key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise SealKeyError(
                f"the storage key file {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it"
            )
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise SealKeyError(f"cannot read the storage key file {path}: {exc.strerror}") from None
        return cls(_key_from_content(content, path), random)

    @classmethod
    def create_file(cls, path: Path, random: RandomSource | None = None) -> ColumnSeal:
        """A new random storage key written to ``path`` as hex, mode 0600; never overwrites."""
        source: RandomSource = random or OsRandom()
        key = source.random_bytes(KEY_SIZE)
        try:
            # O_EXCL: an existing key file (and what it seals) must never be lost by mistake.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise SealKeyError(f"{path} already exists; refusing to overwrite a key file") from None
        except OSError as exc:
            raise SealKeyError(f"cannot create the storage key file {path}: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as out:
            out.write(key.hex().encode("ascii") + b"\n")
        return cls(key, random)


def _key_from_content(content: bytes, path: Path) -> bytes:
    if len(content) == KEY_SIZE:
        return content
    text = content.strip()
    if len(text) == 2 * KEY_SIZE:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise SealKeyError(
                f"the storage key file {path} must hold {KEY_SIZE} raw bytes or {2 * KEY_SIZE} "
                f"hex digits (it holds {2 * KEY_SIZE} characters that are not all hex digits)"
            ) from None
    raise SealKeyError(
        f"the storage key file {path} must hold {KEY_SIZE} raw bytes or {2 * KEY_SIZE} hex "
        f"digits (it holds {len(content)} bytes)"
    )

"""Create SoftHSM2 tokens for tests, demos and local HSM-backed keystores.

SoftHSM2 reads its configuration file from the ``SOFTHSM2_CONF`` environment variable when the
PKCS#11 library is initialised, so a token created in a fresh directory only becomes visible
to this process after :func:`activate` points the variable at it and re-initialises the
library (which closes every open session: only one SoftHSM2 configuration is live per process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from smarthydra.crypto.keystore import KeystoreError

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


class SoftHsmUnavailable(KeystoreError):
    """libsofthsm2 or softhsm2-util is not installed."""


def find_module() -> Path | None:
    """The SoftHSM2 PKCS#11 module, from ``SOFTHSM2_MODULE`` or the usual install paths."""
    override = os.environ.get("SOFTHSM2_MODULE")
    candidates = (override, *MODULE_CANDIDATES) if override else MODULE_CANDIDATES
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def find_util() -> str | None:
    return shutil.which("softhsm2-util")


def unavailable_reason() -> str | None:
    """Why SoftHSM2 cannot be used here, or None if it can."""
    if find_module() is None:
        return "libsofthsm2.so not found (apt-get install softhsm2, or set SOFTHSM2_MODULE)"
    if find_util() is None:
        return "softhsm2-util not on PATH (apt-get install softhsm2)"
    return None


@dataclass(frozen=True)
class SoftHsmToken:
    """A SoftHSM2 token: where its configuration lives and how to log in."""

    module_path: Path
    conf_path: Path
    token_label: str
    user_pin: str
    so_pin: str


def write_config(directory: Path) -> Path:
    """Write a softhsm2.conf keeping tokens under ``directory/tokens``; returns its path."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    if not conf.exists():
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
    return conf


def init_token(directory: Path, token_label: str, user_pin: str, so_pin: str) -> SoftHsmToken:
    """Initialise a new token in the SoftHSM2 store at ``directory`` (created if needed)."""
    module = find_module()
    util = find_util()
    if module is None or util is None:
        raise SoftHsmUnavailable(unavailable_reason() or "SoftHSM2 unavailable")
    conf = write_config(directory)
    result = subprocess.run(
        [
            util,
            "--init-token",
            "--free",
            "--label",
            token_label,
            "--pin",
            user_pin,
            "--so-pin",
            so_pin,
        ],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise KeystoreError(
            f"softhsm2-util --init-token failed: {(result.stderr or result.stdout).strip()}"
        )
    return SoftHsmToken(module, conf, token_label, user_pin, so_pin)


def activate(token: SoftHsmToken) -> None:
    """Make ``token``'s SoftHSM2 store the one this process sees (re-initialises the library)."""
    import pkcs11

    os.environ["SOFTHSM2_CONF"] = str(token.conf_path)
    library = pkcs11.lib(str(token.module_path))
    library.reinitialize()

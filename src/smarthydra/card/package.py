"""Signed applet packages: the Load File Data Block of a post-issuance applet.

A package is a manifest plus the Python source of one applet module written against the
card API (see :mod:`smarthydra.card.sandbox` for what that source may use). It is encoded as
canonical CBOR (RFC 8949 §4.2.1, deterministic): the same package always gives the same
bytes, so the hash a DAP signs over (GlobalPlatform Card Specification 2.3.1 §C.2: the hash of
the Load File Data Block) is well defined. The encoded block is what goes into the LOAD
command's C4 data (after the GlobalPlatform TLV framing, which the LOAD path owns).

Encoded form (a CBOR map with text keys)::

    {"format": "smarthydra-applet-package/1",
     "aid": bstr, "name": tstr, "version": [major, minor], "api": [major, minor],
     "applets": {class name: [module AID, ...]}, "source-sha256": bstr, "source": tstr}

Decoding refuses anything else with a :class:`PackageError` saying what is wrong: unknown or
missing keys, wrong types, AIDs of the wrong length, a source that does not match its hash,
or bytes that are not the canonical encoding of what they contain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from smarthydra.card.registry import MAX_AID, MIN_AID

PACKAGE_FORMAT = "smarthydra-applet-package/1"
#: card API version this card implements (major changes break applets, minor ones add)
CARD_API_VERSION: tuple[int, int] = (1, 1)  # 1.1 added CBOR and CardCrypto
MAX_SOURCE_BYTES = 65536
MAX_PACKAGE_BYTES = MAX_SOURCE_BYTES + 4096
MAX_APPLET_CLASSES = 16
MAX_NAME_LENGTH = 64

_KEYS = frozenset({"format", "aid", "name", "version", "api", "applets", "source-sha256",
                   "source"})


class PackageError(Exception):
    """A package (or its manifest) is malformed, inconsistent or not acceptable."""


def _check_aid(aid: bytes, what: str) -> None:
    if not MIN_AID <= len(aid) <= MAX_AID:
        raise PackageError(f"{what} must be {MIN_AID}..{MAX_AID} bytes, got {len(aid)}")


def _check_identifier(name: str, what: str) -> None:
    if not name.isidentifier() or name.startswith("_") or len(name) > MAX_NAME_LENGTH:
        raise PackageError(f"{what} {name!r} is not a public Python identifier")


def _check_version(version: tuple[int, int], what: str) -> None:
    if len(version) != 2 or not all(0 <= part <= 0xFF for part in version):
        raise PackageError(f"{what} is two numbers 0..255, got {version!r}")


def source_sha256(source: str) -> bytes:
    return hashlib.sha256(source.encode("utf-8")).digest()


@dataclass(frozen=True)
class PackageManifest:
    """What a package declares: who it is, what it needs, which applets it offers."""

    aid: bytes  # the package (load file) AID: one firewall context
    name: str
    version: tuple[int, int]
    applets: Mapping[str, tuple[bytes, ...]]  # applet class name -> its module AIDs
    api_version: tuple[int, int] = CARD_API_VERSION  # the card API the source is written for
    source_hash: bytes = b""  # SHA-256 of the UTF-8 source

    def __post_init__(self) -> None:
        _check_aid(self.aid, "package AID")
        if len(self.name) > MAX_NAME_LENGTH:
            raise PackageError(f"a package name is at most {MAX_NAME_LENGTH} characters")
        _check_version(self.version, "package version")
        _check_version(self.api_version, "card API version")
        if not self.applets:
            raise PackageError("a package offers at least one applet class")
        if len(self.applets) > MAX_APPLET_CLASSES:
            raise PackageError(f"a package offers at most {MAX_APPLET_CLASSES} applet classes")
        seen: set[bytes] = set()
        for class_name, modules in self.applets.items():
            _check_identifier(class_name, "applet class name")
            if not modules:
                raise PackageError(f"applet class {class_name} has no module AID")
            for module in modules:
                _check_aid(module, f"module AID of {class_name}")
                if module in seen or module == self.aid:
                    raise PackageError(f"module AID {module.hex().upper()} is used twice")
                seen.add(module)
        if len(self.source_hash) != 32:
            raise PackageError("the source hash is 32 bytes (SHA-256)")

    @property
    def modules(self) -> dict[bytes, str]:
        """Module AID -> applet class name."""
        return {module: name for name, modules in self.applets.items() for module in modules}


@dataclass(frozen=True)
class AppletPackage:
    """A post-issuance applet: manifest and module source."""

    manifest: PackageManifest
    source: str = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.source.encode("utf-8")) > MAX_SOURCE_BYTES:
            raise PackageError(f"applet source exceeds {MAX_SOURCE_BYTES} bytes")
        if source_sha256(self.source) != self.manifest.source_hash:
            raise PackageError("source does not match the manifest's source hash")

    @property
    def aid(self) -> bytes:
        return self.manifest.aid

    @staticmethod
    def build(
        source: str,
        *,
        aid: bytes,
        name: str,
        applets: Mapping[str, tuple[bytes, ...] | list[bytes]],
        version: tuple[int, int] = (1, 0),
        api_version: tuple[int, int] = CARD_API_VERSION,
    ) -> AppletPackage:
        """A package from source text and manifest fields (the source hash is computed)."""
        manifest = PackageManifest(
            aid=bytes(aid), name=name, version=tuple(version),  # type: ignore[arg-type]
            applets={k: tuple(bytes(m) for m in v) for k, v in applets.items()},
            api_version=tuple(api_version),  # type: ignore[arg-type]
            source_hash=source_sha256(source),
        )
        return AppletPackage(manifest, source)

    def encode(self) -> bytes:
        """The Load File Data Block: canonical CBOR, identical for identical packages."""
        m = self.manifest
        return cbor2.dumps(
            {
                "format": PACKAGE_FORMAT,
                "aid": m.aid,
                "name": m.name,
                "version": list(m.version),
                "api": list(m.api_version),
                "applets": {name: list(mods) for name, mods in m.applets.items()},
                "source-sha256": m.source_hash,
                "source": self.source,
            },
            canonical=True,
        )

    def sha256(self) -> bytes:
        """Hash of the Load File Data Block (what a DAP signature covers)."""
        return hashlib.sha256(self.encode()).digest()

    @staticmethod
    def decode(data: bytes) -> AppletPackage:
        """Parse an encoded package; any defect raises :class:`PackageError`."""
        if len(data) > MAX_PACKAGE_BYTES:
            raise PackageError(f"a package is at most {MAX_PACKAGE_BYTES} bytes")
        try:
            raw = cbor2.loads(bytes(data))
        except Exception as exc:  # cbor2 raises several types for broken input
            raise PackageError(f"not a CBOR package: {exc}") from None
        if not isinstance(raw, dict):
            raise PackageError("a package is a CBOR map")
        keys = set(raw)
        if keys != _KEYS:
            missing = sorted(str(k) for k in _KEYS - keys)
            extra = sorted(repr(k) for k in keys - _KEYS)
            raise PackageError(f"package keys wrong (missing {missing}, unexpected {extra})")
        if raw["format"] != PACKAGE_FORMAT:
            raise PackageError(f"unknown package format {raw['format']!r}")
        aid = _bytes(raw["aid"], "aid")
        name = _text(raw["name"], "name")
        version = _version(raw["version"], "version")
        api = _version(raw["api"], "api")
        source_hash = _bytes(raw["source-sha256"], "source-sha256")
        source = _text(raw["source"], "source")
        applets_raw = raw["applets"]
        if not isinstance(applets_raw, dict):
            raise PackageError("'applets' is a map of class name to module AIDs")
        applets: dict[str, tuple[bytes, ...]] = {}
        for class_name, modules in applets_raw.items():
            class_name = _text(class_name, "applet class name")
            if not isinstance(modules, list):
                raise PackageError(f"module AIDs of {class_name} are a list")
            applets[class_name] = tuple(_bytes(m, f"module AID of {class_name}")
                                        for m in modules)
        manifest = PackageManifest(aid, name, version, applets, api, source_hash)
        package = AppletPackage(manifest, source)
        if package.encode() != bytes(data):
            raise PackageError("package is not in canonical CBOR form")
        return package


def _bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise PackageError(f"'{what}' must be a byte string")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise PackageError(f"'{what}' must be a text string")
    return value


def _version(value: Any, what: str) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(type(v) is int and 0 <= v <= 0xFF for v in value)):
        raise PackageError(f"'{what}' must be [major, minor] with numbers 0..255")
    return (value[0], value[1])


# --- building packages from files ---------------------------------------------------------


def _hex_aid(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise PackageError(f"{what} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise PackageError(f"{what} {value!r} is not hex") from None


def _dotted_version(value: Any, what: str) -> tuple[int, int]:
    if not isinstance(value, str) or value.count(".") != 1:
        raise PackageError(f"{what} is 'major.minor', got {value!r}")
    major, minor = value.split(".")
    if not (value.isascii() and major.isdigit() and minor.isdigit()):
        raise PackageError(f"{what} is 'major.minor', got {value!r}")
    return (int(major), int(minor))


def build_package(source_path: Path, manifest: Mapping[str, Any]) -> AppletPackage:
    """A package from an applet module file and a JSON-style manifest::

        {"aid": "F0534859A0", "name": "purse", "version": "1.0", "api": "1.0",
         "applets": {"PurseApplet": ["F0534859A001"]}}

    ``api`` is optional (this card's API version).
    """
    try:
        source = Path(source_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackageError(f"cannot read applet source {source_path}: {exc}") from None
    allowed = {"aid", "name", "version", "api", "applets"}
    unknown = set(manifest) - allowed
    if unknown:
        raise PackageError(f"unknown manifest keys {sorted(unknown)}")
    for key in ("aid", "name", "version", "applets"):
        if key not in manifest:
            raise PackageError(f"manifest lacks {key!r}")
    applets_raw = manifest["applets"]
    if not isinstance(applets_raw, Mapping):
        raise PackageError("manifest 'applets' maps class names to lists of module AIDs")
    applets: dict[str, tuple[bytes, ...]] = {}
    for class_name, modules in applets_raw.items():
        if isinstance(modules, str):
            modules = [modules]
        if not isinstance(modules, list):
            raise PackageError(f"module AIDs of {class_name} are a list of hex strings")
        applets[str(class_name)] = tuple(_hex_aid(m, f"module AID of {class_name}")
                                         for m in modules)
    name = manifest["name"]
    if not isinstance(name, str):
        raise PackageError("manifest 'name' is a string")
    api = (_dotted_version(manifest["api"], "manifest 'api'") if "api" in manifest
           else CARD_API_VERSION)
    return AppletPackage.build(
        source,
        aid=_hex_aid(manifest["aid"], "package AID"),
        name=name,
        applets=applets,
        version=_dotted_version(manifest["version"], "manifest 'version'"),
        api_version=api,
    )


def load_manifest(path: Path) -> dict[str, Any]:
    """Read a JSON manifest file (see :func:`build_package`)."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"cannot read manifest {path}: {exc}") from None
    if not isinstance(value, dict):
        raise PackageError(f"manifest {path} is not a JSON object")
    return value

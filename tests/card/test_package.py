"""Applet packages: canonical encoding, strict decoding, the DAP hash, the file builder."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.card.package import (
    CARD_API_VERSION,
    PACKAGE_FORMAT,
    AppletPackage,
    PackageError,
    PackageManifest,
    build_package,
    load_manifest,
    source_sha256,
)

APPLETS = Path(__file__).parent / "applets"
PURSE_AID = bytes.fromhex("F0534859A0")
PURSE_MODULE = bytes.fromhex("F0534859A001")


def purse_package(**overrides: Any) -> AppletPackage:
    fields: dict[str, Any] = {
        "aid": PURSE_AID, "name": "purse", "applets": {"PurseApplet": [PURSE_MODULE]},
        "version": (1, 2),
    }
    fields.update(overrides)
    return AppletPackage.build((APPLETS / "purse.py").read_text(), **fields)


def raw_map(package: AppletPackage) -> dict[str, Any]:
    value = cbor2.loads(package.encode())
    assert isinstance(value, dict)
    return value


def test_round_trip_and_fields() -> None:
    package = purse_package()
    decoded = AppletPackage.decode(package.encode())
    assert decoded == package
    assert decoded.manifest.version == (1, 2)
    assert decoded.manifest.api_version == CARD_API_VERSION
    assert decoded.manifest.modules == {PURSE_MODULE: "PurseApplet"}
    assert decoded.manifest.source_hash == hashlib.sha256(package.source.encode()).digest()


def test_encoding_is_deterministic_whatever_the_input_order() -> None:
    two = {"A": [bytes.fromhex("F0534859A001")], "B": [bytes.fromhex("F0534859A002")]}
    first = purse_package(applets=two)
    second = purse_package(applets=dict(reversed(list(two.items()))))
    assert first.encode() == second.encode()
    assert first.encode() == purse_package(applets=two).encode()


def test_sha256_is_the_hash_of_the_load_file_data_block() -> None:
    package = purse_package()
    assert package.sha256() == hashlib.sha256(package.encode()).digest()
    assert purse_package(version=(1, 3)).sha256() != package.sha256()


def _reencode(value: dict[str, Any]) -> bytes:
    return cbor2.dumps(value, canonical=True)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.pop("source"), "missing"),
        (lambda m: m.update(extra=1), "unexpected"),
        (lambda m: m.update(format="other/1"), "unknown package format"),
        (lambda m: m.update(aid="F0534859A0"), "'aid' must be a byte string"),
        (lambda m: m.update(aid=b"\x01\x02"), "package AID must be 5..16 bytes"),
        (lambda m: m.update(version=[1]), "'version' must be [major, minor]"),
        (lambda m: m.update(api=[1, 300]), "'api' must be [major, minor]"),
        (lambda m: m.update(name=7), "'name' must be a text string"),
        (lambda m: m.update(source=m["source"] + "\n# tampered"), "source hash"),
        (lambda m: m.update(applets=[]), "'applets' is a map"),
        (lambda m: m.update(applets={}), "at least one applet class"),
        (lambda m: m.update(applets={"_Hidden": [PURSE_MODULE]}), "not a public Python"),
        (lambda m: m.update(applets={"A": [PURSE_MODULE], "B": [PURSE_MODULE]}), "used twice"),
        (lambda m: m.update(applets={"A": PURSE_MODULE}), "are a list"),
        (lambda m: m.update(applets={"A": [b"\x01"]}), "module AID of A"),
    ],
)
def test_decode_refuses_malformed_packages(mutate: Any, message: str) -> None:
    value = raw_map(purse_package())
    mutate(value)
    with pytest.raises(PackageError, match=message.replace("[", r"\[")):
        AppletPackage.decode(_reencode(value))


def test_decode_refuses_non_canonical_bytes() -> None:
    value = raw_map(purse_package())
    non_canonical = cbor2.dumps(dict(sorted(value.items())))  # lexical, not canonical, order
    assert non_canonical != purse_package().encode()
    with pytest.raises(PackageError, match="canonical"):
        AppletPackage.decode(non_canonical)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "not a CBOR package"), (b"\xff\xff", "not a CBOR package"),
     (cbor2.dumps([1, 2]), "is a CBOR map"), (bytes(80000), "at most")],
)
def test_decode_refuses_non_packages(data: bytes, message: str) -> None:
    with pytest.raises(PackageError, match=message):
        AppletPackage.decode(data)


def test_manifest_checks() -> None:
    source = "x = 1\n"
    with pytest.raises(PackageError, match="source hash is 32 bytes"):
        PackageManifest(PURSE_AID, "p", (1, 0), {"A": (PURSE_MODULE,)})
    with pytest.raises(PackageError, match="does not match"):
        AppletPackage(PackageManifest(PURSE_AID, "p", (1, 0), {"A": (PURSE_MODULE,)},
                                      source_hash=bytes(32)), source)
    with pytest.raises(PackageError, match="has no module AID"):
        AppletPackage.build(source, aid=PURSE_AID, name="p", applets={"A": []})
    with pytest.raises(PackageError, match="exceeds"):
        AppletPackage.build("#" * 70000, aid=PURSE_AID, name="p", applets={"A": [PURSE_MODULE]})
    assert source_sha256(source) == hashlib.sha256(b"x = 1\n").digest()


def test_build_package_from_file_and_json_manifest(tmp_path: Path) -> None:
    manifest_path = tmp_path / "purse.json"
    manifest_path.write_text(json.dumps({
        "aid": "F0534859A0", "name": "purse", "version": "1.2",
        "applets": {"PurseApplet": ["F0534859A001"]},
    }))
    package = build_package(APPLETS / "purse.py", load_manifest(manifest_path))
    assert package == purse_package()
    assert PACKAGE_FORMAT in package.encode().decode("latin-1")


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"name": "p", "version": "1.0", "applets": {"A": ["F0534859A001"]}}, "lacks 'aid'"),
        ({"aid": "zz", "name": "p", "version": "1.0", "applets": {"A": ["F0534859A001"]}},
         "not hex"),
        ({"aid": "F0534859A0", "name": "p", "version": "one",
          "applets": {"A": ["F0534859A001"]}}, "major.minor"),
        ({"aid": "F0534859A0", "name": "p", "version": "1.0", "applets": ["A"]}, "maps class"),
        ({"aid": "F0534859A0", "name": "p", "version": "1.0", "applets": {"A": ["F0"]},
          "colour": "red"}, "unknown manifest keys"),
        ({"aid": "F0534859A0", "name": "p", "version": "1.0", "api": "2",
          "applets": {"A": ["F0534859A001"]}}, "major.minor"),
    ],
)
def test_build_package_refuses_bad_manifests(manifest: dict[str, Any], message: str) -> None:
    with pytest.raises(PackageError, match=message):
        build_package(APPLETS / "purse.py", manifest)


def test_build_package_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="cannot read applet source"):
        build_package(tmp_path / "missing.py", {})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PackageError, match="cannot read manifest"):
        load_manifest(bad)
    bad.write_text("[1]")
    with pytest.raises(PackageError, match="not a JSON object"):
        load_manifest(bad)


# --- fuzzing -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_decode_arbitrary_bytes_only_raises_package_error(data: bytes) -> None:
    with contextlib.suppress(PackageError):
        AppletPackage.decode(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_decode_mutated_packages_only_raises_package_error(data: st.DataObject) -> None:
    encoded = bytearray(purse_package().encode())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(encoded) - 1))
        encoded[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    try:
        decoded = AppletPackage.decode(bytes(encoded[:cut]))
    except PackageError:
        return
    assert decoded.encode() == bytes(encoded[:cut])  # whatever decodes is canonical


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.binary(max_size=20)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["format", "aid", "name", "version", "api", "applets",
                                        "source-sha256", "source", "other"]),
                       cbor_values, max_size=9))
def test_decode_structured_garbage_only_raises_package_error(value: dict[str, Any]) -> None:
    with contextlib.suppress(PackageError):
        AppletPackage.decode(cbor2.dumps(value, canonical=True))

"""Applet package manifests the fuzzers in tests/fuzz found escaping with a ValueError."""

from __future__ import annotations

from pathlib import Path

import pytest

from smarthydra.card.package import PackageError, build_package


@pytest.mark.parametrize("version", ["\u00b2.0", "1.\u0663"])
def test_a_version_of_non_ascii_digits_is_a_package_error(tmp_path: Path, version: str) -> None:
    source = tmp_path / "applet.py"
    source.write_text("class A:\n    pass\n", encoding="utf-8")
    manifest = {"aid": "F0534859A0", "name": "p", "version": version,
                "applets": {"A": ["F0534859A001"]}}
    with pytest.raises(PackageError, match=r"major\.minor"):
        build_package(source, manifest)

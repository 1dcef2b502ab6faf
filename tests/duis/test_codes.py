"""Every ResponseCode of the DUIS 5.4 schema has a meaning; the DCC's own codes are in the schema."""

from __future__ import annotations

import pytest
from lxml import etree

from smarthydra.duis.codes import ResponseCode, describe_response_code
from tests.conftest import conformance_path

XS = "{http://www.w3.org/2001/XMLSchema}"


def _schema_codes() -> list[str]:
    root = etree.parse(str(conformance_path("duis", "duis-5.4.xsd"))).getroot()
    for simple in root.iter(f"{XS}simpleType"):
        if simple.get("name") == "ResponseCode":
            return [e.get("value") for e in simple.iter(f"{XS}enumeration")]
    raise AssertionError("no ResponseCode type in the schema")


def test_every_schema_code_is_described() -> None:
    codes = _schema_codes()
    assert len(codes) > 150
    meanings = {code: describe_response_code(code) for code in codes}
    assert meanings["E050102"] == "error 02 specific to service reference 5.1"
    assert meanings["W050201"].startswith("warning 01")
    assert meanings["E4"] == ResponseCode.NOT_DEVICE_OWNER.meaning
    assert all(meanings.values())


def test_the_dccs_codes_are_all_in_the_schema() -> None:
    codes = set(_schema_codes())
    assert {c.value for c in ResponseCode} <= codes


@pytest.mark.parametrize("bad", ["", "X1", "E", "Eabc"])
def test_non_codes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        describe_response_code(bad)

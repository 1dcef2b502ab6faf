"""The use-case catalogue and ``smarthydra gbcs parse``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.gbcs.catalogue import Catalogue, CatalogueError, Category
from tests.conftest import conformance_path

runner = CliRunner()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(conformance_path("gbcs"))


def test_catalogue_contents(catalogue: Catalogue) -> None:
    assert len(catalogue.use_cases) == 207
    ecs17b = catalogue.for_message_code(0x0027)
    assert ecs17b is not None and ecs17b.code == "ECS17b"
    assert ecs17b.category is Category.NON_CRITICAL_COMMAND and not ecs17b.is_critical
    ecs43 = catalogue.for_message_code(0x0050)
    assert ecs43 is not None and ecs43.category is Category.CRITICAL_COMMAND and ecs43.is_critical
    assert 0x0050 in ecs43.message_codes
    assert catalogue.describe_message_code(0x00CC).startswith("Future Dated Execution")
    assert catalogue.for_message_code(0x00CC) is None
    assert "unknown" in catalogue.describe_message_code(0xFFFF)
    assert "Voltage" in catalogue.describe_alert_code(0x8002)
    categories = {uc.category for uc in catalogue.use_cases.values()}
    assert Category.CRITICAL_ALERT in categories and Category.OTHER in categories
    assert any(uc.han_only for uc in catalogue.use_cases.values())


def test_catalogue_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not found"):
        Catalogue.load(tmp_path)
    (tmp_path / "use-cases.json").write_text("{")
    (tmp_path / "codes.json").write_text("{}")
    with pytest.raises(CatalogueError, match="not JSON"):
        Catalogue.load(tmp_path)
    (tmp_path / "use-cases.json").write_text("[]")
    with pytest.raises(CatalogueError, match="unexpected shape"):
        Catalogue.load(tmp_path)


def test_parse_cli_json_with_keys_and_catalogue() -> None:
    root = conformance_path("gbcs")
    path = root / "rtds-4.5.0" / "4.1.1_ECS17b" / "ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX"
    result = runner.invoke(
        app, ["gbcs", "parse", str(path), "--keystore", str(root / "rtds-keystore"), "--json"]
    )
    assert result.exit_code == 0, result.output
    tree = json.loads(result.stdout)
    assert tree["header"]["use_case"] == "ECS17b"
    assert tree["header"]["cra_flag"] == "response"
    assert tree["payload"]["decoded"]["apdu"] == "access-response"
    assert tree["payload"]["roundtrip"] is True
    assert tree["checks"]["mac"] == "valid"
    (decrypted,) = tree["checks"]["decrypted"]
    assert decrypted["data"]["structure"][0]["structure"][0] == {"double_long_unsigned": 10}


def test_parse_cli_hex_argument_and_tree() -> None:
    path = conformance_path(
        "gbcs", "rtds-4.5.0", "7.2_ECS43", "ECS43_7.2_SUCCESS_PRECOMMAND_GBCS.HEX"
    )
    result = runner.invoke(app, ["gbcs", "parse", path.read_text().strip()])
    assert result.exit_code == 0, result.output
    assert "access-request" in result.stdout and "0-0:10.0.106.255" in result.stdout


def test_parse_cli_errors() -> None:
    result = runner.invoke(app, ["gbcs", "parse", "zz", "--json"])
    assert result.exit_code == 2 and "not hex" in json.loads(result.stdout)["error"]
    result = runner.invoke(app, ["gbcs", "parse", "DD00", "--json"])
    assert result.exit_code == 2 and "Truncated" in json.loads(result.stdout)["error"]
    result = runner.invoke(app, ["gbcs", "parse", "DD00", "--keystore", "/nonexistent"])
    assert result.exit_code == 2

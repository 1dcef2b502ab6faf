"""The use-case catalogue and ``smarthydra gbcs parse``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.gbcs.catalogue import (
    SENSITIVE_RESPONSE_USE_CASES,
    Catalogue,
    CatalogueError,
    Category,
    CounterRule,
    RemotePartyRole,
)
from smarthydra.gbcs.envelope import CraFlag, decode_message
from smarthydra.gbcs.rtds import read_hex_file
from smarthydra.gbcs.sensitive import find_protected_blocks
from tests.conftest import conformance_path

runner = CliRunner()


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(conformance_path("gbcs"))


def test_catalogue_contents(catalogue: Catalogue) -> None:
    # 207 from use-cases.json, 12 older use cases still in codes.json and the RTDS.
    assert len(catalogue.use_cases) == 219
    assert sum(1 for uc in catalogue.use_cases.values() if uc.message_type) == 207
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


def test_catalogue_roles_sensitivity_replay(catalogue: Catalogue) -> None:
    ecs17b = catalogue.use_case("ECS17b")
    assert ecs17b is not None and ecs17b.response_sensitive
    assert "4.1.1" in ecs17b.service_request_variants
    assert set(ecs17b.duis_roles) == {"IS", "ED"}  # SRV 4.1.x minus the gas parties
    assert RemotePartyRole.SUPPLIER in ecs17b.remote_party_roles
    assert ecs17b.replay.checked_by == "device"
    assert ecs17b.replay.checks[0].rule is CounterRule.GREATER_THAN_LAST
    assert ecs17b.response_replay.rule is CounterRule.EQUALS_COMMAND
    ecs43 = catalogue.use_case("ECS43")
    assert ecs43 is not None and not ecs43.response_sensitive
    assert RemotePartyRole.NETWORK_OPERATOR not in ecs43.remote_party_roles
    ecs68 = catalogue.use_case("ECS68")
    assert ecs68 is not None and ecs68.category is Category.CRITICAL_ALERT
    assert ecs68.replay.checked_by == "recipient"
    # Newer codes than codes.json and older use cases than use-cases.json both resolve.
    cs02g = catalogue.for_message_code(0x0124)
    assert cs02g is not None and cs02g.code == "CS02g"
    assert catalogue.use_cases["CS02g"].message_codes == (0x0124, 0x0125, 0x0126)
    ecs08 = catalogue.for_message_code(0x001F)
    assert ecs08 is not None and ecs08.code == "ECS08" and ecs08.is_critical
    network = catalogue.query(role=RemotePartyRole.NETWORK_OPERATOR)
    assert network and all(
        RemotePartyRole.NETWORK_OPERATOR in u.remote_party_roles for u in network
    )
    sensitive = catalogue.query(response_sensitive=True)
    assert {u.code for u in sensitive} == SENSITIVE_RESPONSE_USE_CASES
    assert catalogue.query(category=Category.CRITICAL_ALERT, role="IS") == []
    as_json = ecs17b.to_json()
    assert as_json["message_codes"] == ["0027"] and as_json["response_sensitive"] is True
    assert "strictly greater" in str(as_json["replay"])


def test_sensitive_list_matches_the_rtds(catalogue: Catalogue) -> None:
    """Every RTDS response or alert that carries an encrypted block is of a sensitive use case,
    and every sensitive use case with a success response in the RTDS encrypts it."""
    root = conformance_path("gbcs", "rtds-4.5.0")
    with_blocks: set[str] = set()
    success_without: set[str] = set()
    for path in root.rglob("*.HEX"):
        if "COMMAND" in path.name:
            continue
        message = decode_message(read_hex_file(path))
        use_case = catalogue.for_message_code(message.message_code)
        if use_case is None:
            continue
        blocks = find_protected_blocks(message.payload, alert=message.cra_flag is CraFlag.ALERT)
        if blocks:
            with_blocks.add(use_case.code)
        elif "SUCCESS" in path.name:
            success_without.add(use_case.code)
    assert with_blocks <= SENSITIVE_RESPONSE_USE_CASES
    assert not (success_without & SENSITIVE_RESPONSE_USE_CASES)
    assert len(with_blocks) == 24


def test_legacy_categories_match_the_rtds_signatures(catalogue: Catalogue) -> None:
    root = conformance_path("gbcs", "rtds-4.5.0")
    for path in root.rglob("*_COMMAND_GBCS.HEX"):
        if "PRECOMMAND" in path.name:
            continue
        message = decode_message(read_hex_file(path))
        use_case = catalogue.for_message_code(message.message_code)
        if use_case is not None and use_case.category.is_command:
            assert use_case.is_critical == message.general_signing.is_signed, path.name


def test_default_catalogue_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SMARTHYDRA_CONFORMANCE", str(conformance_path()))
    assert Catalogue.default().use_case("ECS17b") is not None
    monkeypatch.setenv("SMARTHYDRA_CONFORMANCE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    # Falls back to the checkout's neighbour when the variable points nowhere useful.
    assert Catalogue.default().use_case("ECS43") is not None


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


def test_prose_use_cases_replay(catalogue: Catalogue) -> None:
    cs02b = catalogue.use_case("CS02b")
    ccs08 = catalogue.use_case("CCS08")
    assert cs02b is not None and cs02b.category is Category.OTHER
    assert cs02b.replay.checked_by == "device"
    assert ccs08 is not None and ccs08.replay.checked_by == "recipient"


def test_service_request_to_use_cases(catalogue: Catalogue) -> None:
    assert [uc.code for uc in catalogue.for_service_request("4.1.1")] == ["ECS17b", "GCS13a"]
    assert [uc.code for uc in catalogue.for_service_request("7.2")] == ["ECS43", "GCS32"]
    assert "CS02b" in [uc.code for uc in catalogue.for_service_request("6.15.1")]
    assert len(catalogue.service_requests) > 80
    # Without the RTDS beside it, the service reference (narrowed by fuel) still answers.
    bare = Catalogue(catalogue.use_cases, catalogue.message_codes, catalogue.alert_codes)
    codes = [uc.code for uc in bare.for_service_request("4.1.1")]
    assert "ECS17b" in codes and "GCS13a" in codes

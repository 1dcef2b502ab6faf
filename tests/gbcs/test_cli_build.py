"""``smarthydra gbcs build`` and ``gbcs use-cases`` end to end: parse a real command, feed its
parameters back, get the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.rtds import KeyKind, RtdsKeystore
from smarthydra.gbcs.security import verify_signature
from tests.conftest import conformance_path

runner = CliRunner()
SUPPLIER = "90B3D51F30010000"
ESME = "00DB1234567890A0"


def _parse(path: Path) -> dict[str, object]:
    result = runner.invoke(app, ["gbcs", "parse", str(path), "--json"])
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def test_build_non_critical_command_from_parse_output(tmp_path: Path) -> None:
    root = conformance_path()
    source = root / "gbcs/rtds-4.5.0/4.1.1_ECS17b/ECS17b_4.1.1_SINGLE_SUCCESS_COMMAND_GBCS.HEX"
    tree = _parse(source)
    params = tmp_path / "params.json"
    params.write_text(json.dumps(tree["params"]))
    header = tree["header"]
    assert isinstance(header, dict)
    result = runner.invoke(
        app,
        [
            "gbcs", "build", "ECS17b", "--params", f"@{params}",
            "--originator", header["originator"], "--recipient", header["recipient"],
            "--counter", str(header["originator_counter"]), "--conformance", str(root),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "".join(source.read_text().split()).upper()


def test_build_critical_command_signs_and_macs() -> None:
    root = conformance_path()
    source = root / "gbcs/rtds-4.5.0/7.2_ECS43/ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX"
    tree = _parse(source)
    result = runner.invoke(
        app,
        [
            "gbcs", "build", "ECS43", "--params", json.dumps(tree["params"]),
            "--originator", SUPPLIER, "--recipient", ESME, "--counter", "1000",
            "--conformance", str(root), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["use_case"] == "ECS43" and out["message_code"] == "0050"
    built = decode_message(bytes.fromhex(out["hex"]))
    keys = RtdsKeystore.load(root / "gbcs" / "rtds-keystore")
    ds = keys.public_key(bytes.fromhex(SUPPLIER), KeyKind.DS)
    assert ds is not None and verify_signature(built, ds)
    # The unsigned pre-command is the RTDS pre-command byte for byte.
    result = runner.invoke(
        app,
        [
            "gbcs", "build", "ECS43", "--params", json.dumps(tree["params"]),
            "--originator", SUPPLIER, "--recipient", ESME, "--counter", "1000",
            "--kind", "precommand",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = root / "gbcs/rtds-4.5.0/7.2_ECS43/ECS43_7.2_SUCCESS_PRECOMMAND_GBCS.HEX"
    assert result.stdout.strip() == "".join(expected.read_text().split()).upper()


def test_build_errors_are_specific() -> None:
    root = conformance_path()
    base = ["gbcs", "build", "ECS43", "--originator", SUPPLIER, "--recipient", ESME]
    cases = [
        (["--params", "{", "--counter", "1"], "not JSON"),
        (["--params", '{"payload": {}}', "--counter", "1"], "exactly one of"),
        (
            ["--params", '{"payload": {"xdlms": {"apdu": "nope"}}}', "--counter", "1"],
            "access-request",
        ),
        (["--params", "@/nonexistent.json", "--counter", "1"], "not found"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, [*base, *extra, "--conformance", str(root), "--json"])
        assert result.exit_code == 2, result.output
        assert message in json.loads(result.stdout)["error"], result.stdout
    good = json.dumps(
        {
            "payload": {
                "xdlms": {
                    "apdu": "access-request",
                    "requests": [
                        {"kind": "action", "class_id": 9, "obis": "0-0:10.0.106.255", "index": 1}
                    ],
                    "data": [{"long_unsigned": 52}],
                }
            }
        }
    )
    result = runner.invoke(app, [*base, "--params", good, "--counter", "1", "--json"])
    assert result.exit_code == 2 and "needs keys" in json.loads(result.stdout)["error"]
    result = runner.invoke(
        app,
        ["gbcs", "build", "NOPE1", "--params", good, "--originator", SUPPLIER,
         "--recipient", ESME, "--counter", "1", "--conformance", str(root), "--json"],
    )  # fmt: skip
    assert result.exit_code == 2 and "no use case" in json.loads(result.stdout)["error"]
    result = runner.invoke(
        app,
        ["gbcs", "build", "ECS43", "--params", good, "--originator", "00",
         "--recipient", ESME, "--counter", "1", "--conformance", str(root)],
    )  # fmt: skip
    assert result.exit_code == 2 and "8 bytes" in result.output
    # A hand-written command for the critical use case: signed by the supplier, MAC'd.
    result = runner.invoke(
        app, [*base, "--params", good, "--counter", "7", "--conformance", str(root), "--json"]
    )
    assert result.exit_code == 0, result.output
    built = decode_message(bytes.fromhex(json.loads(result.stdout)["hex"]))
    assert built.originator_counter == 7 and built.general_signing.is_signed
    assert built.payload.hex() == "d920000007000103000900000a006aff0101120034"


def test_use_cases_listing() -> None:
    root = conformance_path()
    result = runner.invoke(
        app, ["gbcs", "use-cases", "--conformance", str(root), "--role", "OU", "--json"]
    )
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed and all("OU" in uc["duis_roles"] for uc in listed)
    result = runner.invoke(
        app,
        ["gbcs", "use-cases", "--conformance", str(root), "--category", "critical alert"],
    )
    assert result.exit_code == 0 and "ECS68" in result.stdout
    result = runner.invoke(
        app,
        ["gbcs", "use-cases", "--conformance", str(root), "--service-request", "4.1.1", "--json"],
    )
    assert [uc["code"] for uc in json.loads(result.stdout)] == ["ECS17b", "GCS13a"]
    result = runner.invoke(app, ["gbcs", "use-cases", "--role", "wizard", "--json"])
    assert result.exit_code == 2 and "role" in json.loads(result.stdout)["error"]


def test_parse_decodes_gbz_and_der_payloads() -> None:
    root = conformance_path("gbcs", "rtds-4.5.0")
    gbz = _parse(root / "4.1.1_GCS13a" / "GCS13a_4.1.1_SUCCESS_RELIABLE_GSME_RESPONSE_GBCS.HEX")
    payload = gbz["payload"]
    assert isinstance(payload, dict)
    assert payload["kind"] == "gbz" and payload["roundtrip"] is True
    der_file = next((root / "6.15.1_CS02bSupplierBySupplier").glob("*_COMMAND_GBCS.HEX"))
    der = _parse(der_file)
    payload = der["payload"]
    assert isinstance(payload, dict) and payload["kind"] == "der"
    decoded = payload["decoded"]
    assert isinstance(decoded, dict) and decoded["tag"] == "SEQUENCE"


def test_parse_names_the_device_alert() -> None:
    root = conformance_path("gbcs")
    path = root / "rtds-4.5.0" / "NA_GCA-ZigBee" / "GCA-ZigBee_NA_8F30_ALERT_GBCS.HEX"
    result = runner.invoke(app, ["gbcs", "parse", str(path), "--catalogue", str(root), "--json"])
    assert result.exit_code == 0, result.output
    alert = json.loads(result.stdout)["payload"]["alert"]
    assert alert["alert_code"] == "8F30" and alert["time"].startswith("2015-01-01")
    assert alert["description"]

"""``smarthydra card`` through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from smarthydra.card.examples import COUNTER_AID
from smarthydra.cli.main import app

runner = CliRunner()


def test_apdu_json_and_persistence(tmp_path: Path) -> None:
    image = tmp_path / "card.img"
    select = "00A4040007" + COUNTER_AID.hex()
    first = runner.invoke(app, ["card", "apdu", select, "801000000400000003", "--image",
                                str(image), "--json"])
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert doc["responses"][1] == {"command": "801000000400000003",
                                   "data": "0000000300000001", "sw": "9000"}
    again = runner.invoke(app, ["card", "apdu", select, "8012000000", "--image", str(image),
                                "--json", "--separate-process"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["responses"][1]["data"] == "0000000300000001"


def test_apdu_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    image = tmp_path / "card.img"
    result = runner.invoke(app, ["card", "apdu", "zz", "--image", str(image)])
    assert result.exit_code == 2 and "not hex" in result.output
    malformed = runner.invoke(app, ["card", "apdu", "00A404", "--image", str(image), "--json"])
    assert malformed.exit_code == 0 and json.loads(malformed.stdout)["responses"][0]["sw"] == "6700"
    image.write_bytes(b"garbage")
    broken = runner.invoke(app, ["card", "apdu", "8012000000", "--image", str(image)])
    assert broken.exit_code == 2 and "card image" in broken.output


def test_info_lists_the_registry(tmp_path: Path) -> None:
    result = runner.invoke(app, ["card", "info", "--image", str(tmp_path / "c.img"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert COUNTER_AID.hex().upper() in [a["aid"] for a in doc["applets"]]
    assert {a["privileges"] for a in doc["applets"]} == {"040000", "000000"}


def test_serve_argument_errors() -> None:
    assert "exactly one" in runner.invoke(app, ["card", "serve"]).output
    bad = runner.invoke(app, ["card", "serve", "--vpcd", "host:notaport"])
    assert bad.exit_code == 2 and "HOST:PORT" in bad.output
    profile = runner.invoke(app, ["card", "serve", "--stdio", "--profile", "nope"])
    assert profile.exit_code == 2 and "unknown card profile" in profile.output

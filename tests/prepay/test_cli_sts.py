"""``smarthydra sts`` end to end through the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from smarthydra.cli.main import app

runner = CliRunner()
KEY02 = ["--vending-key", "abababababababab", "--dkga", "02", "--ea", "07", "--base-date", "1993",
         "--sgc", "123456", "--ti", "1", "--krn", "1", "--kt", "2", "--pan", "600727000000000009"]
KEY04 = ["--vending-key", "0102030405060708090a0b0c0d0e0f1011121314", "--dkga", "04", "--ea",
         "11", "--base-date", "2014", "--sgc", "123456", "--ti", "1", "--krn", "1", "--kt", "2",
         "--pan", "600727000000000009"]


def test_vend_reproduces_published_vector_and_decodes() -> None:
    result = runner.invoke(app, ["sts", "vend", *KEY02, "--class", "0", "--subclass", "0",
                                 "--amount", "0.1", "--issued", "2004-03-01T13:55:00",
                                 "--random", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "23716100501183194197"  # STS 531-1-0-02 CTSA01 step 1
    decoded = runner.invoke(app, ["sts", "decode", "23716100501183194197", *KEY02, "--json"])
    assert decoded.exit_code == 0, decoded.output
    assert json.loads(decoded.output) == {
        "class": 0, "subclass": 0, "amount": "0.1", "tid": 5871715,
        "issued": "2004-03-01T13:55:00+00:00", "rnd": 5,
    }


@pytest.mark.parametrize(("cls", "sub", "amount"), [
    ("0", "1", "25.5"), ("0", "4", "1000"), ("1", "0", "3"), ("2", "0", "6000"), ("2", "5", "0"),
])
def test_vend_decode_round_trip_misty1(cls: str, sub: str, amount: str) -> None:
    vend = runner.invoke(app, ["sts", "vend", *KEY04, "--class", cls, "--subclass", sub,
                               "--amount", amount, "--issued", "2025-02-03T04:05:00Z",
                               "--random", "9"])
    assert vend.exit_code == 0, vend.output
    decoded = runner.invoke(app, ["sts", "decode", vend.output.strip(), *KEY04, "--json"])
    fields = json.loads(decoded.output)
    assert (fields["class"], fields["subclass"]) == (int(cls), int(sub))
    assert str(fields["amount"]) == amount
    if cls != "1":
        assert fields["issued"] == "2025-02-03T04:05:00+00:00"


def test_decode_refusals_exit_non_zero_with_reason() -> None:
    bad = runner.invoke(app, ["sts", "decode", "23716100501183194198", *KEY02, "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["refused"] == "crc"
    short = runner.invoke(app, ["sts", "decode", "12345", *KEY02])
    assert short.exit_code == 1 and "format" in short.output


@pytest.mark.parametrize(("args", "message"), [
    (["--dkga", "03"], "--dkga"), (["--ea", "09"], "--ea"), (["--base-date", "2000"], "base"),
    (["--vending-key", "zz"], "hex"), (["--pan", "123"], "PAN"),
])
def test_bad_options_are_clear_errors(args: list[str], message: str) -> None:
    options = list(KEY02)
    for i in range(0, len(args), 2):
        options[options.index(args[i]) + 1] = args[i + 1]
    result = runner.invoke(app, ["sts", "vend", *options, "--class", "0", "--subclass", "0",
                                 "--amount", "1", "--issued", "2004-01-01T00:00"])
    assert result.exit_code == 2 and message in result.output


def test_vend_after_rollover_date_needs_new_base_date() -> None:
    result = runner.invoke(app, ["sts", "vend", *KEY02, "--class", "0", "--subclass", "0",
                                 "--amount", "1", "--issued", "2025-01-01T00:00"])
    assert result.exit_code == 2 and "rollover" in result.output


def test_key_change_prints_two_tokens() -> None:
    result = runner.invoke(app, ["sts", "key-change", *KEY02, "--new-krn", "2", "--rollover",
                                 "--json"])
    assert result.exit_code == 0, result.output
    tokens = json.loads(result.output)["tokens"]
    assert len(tokens) == 2
    for digits in tokens:
        decoded = runner.invoke(app, ["sts", "decode", digits, *KEY02, "--json"])
        assert json.loads(decoded.output)["subclass"] in (3, 4)

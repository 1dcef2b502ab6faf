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


DECODE_KEYS = {"class", "subclass", "amount", "tid", "issued"}


def test_key_change_for_128_bit_keys_prints_four_tokens_the_meter_accepts() -> None:
    from smarthydra.prepay.sts_meter import redeem
    from tests.prepay.helpers import meter_state, server

    result = runner.invoke(app, ["sts", "key-change", *KEY04, "--new-krn", "2", "--new-sgc",
                                 "654321", "--ken", "200"])
    assert result.exit_code == 0, result.output
    tokens = result.output.split()
    assert len(tokens) == 4
    subclasses = []
    for digits in tokens:
        decoded = runner.invoke(app, ["sts", "decode", digits, *KEY04, "--json"])
        assert decoded.exit_code == 0, decoded.output
        fields = json.loads(decoded.output)
        assert fields.keys() >= DECODE_KEYS and fields["class"] == 2
        subclasses.append(fields["subclass"])
    assert subclasses == [3, 4, 8, 9]
    # KEY04 is tests.prepay.helpers' DKGA-04 vending key and METER
    state = meter_state(server("04", "11", 2014))
    for digits in tokens:
        state, outcome = redeem(state, digits)
    assert outcome.key_changed and state.sgc == 654321 and state.krn == 2 and state.ken == 200


def test_vend_power_limit_reports_the_rounded_up_watts() -> None:
    result = runner.invoke(app, ["sts", "vend", *KEY04, "--class", "2", "--subclass", "0",
                                 "--amount", "20000", "--issued", "2025-02-03T04:05:00",
                                 "--random", "5", "--json"])
    assert result.exit_code == 0, result.output
    vended = json.loads(result.output)
    assert vended["amount"] == 20004
    decoded = runner.invoke(app, ["sts", "decode", vended["token"], *KEY04, "--json"])
    fields = json.loads(decoded.output)
    assert {k: fields[k] for k in DECODE_KEYS} == {
        "class": 2, "subclass": 0, "amount": 20004, "tid": vended["tid"],
        "issued": "2025-02-03T04:05:00+00:00"}


@pytest.mark.parametrize(("args", "message"), [
    (["--class", "2", "--subclass", "3", "--amount", "0"], "key-change"),
    (["--class", "2", "--subclass", "8", "--amount", "0"], "key-change"),
    (["--class", "3", "--subclass", "0", "--amount", "1"], "class 3"),
    (["--class", "0", "--subclass", "0", "--amount", "0.05"], "resolution"),
    (["--class", "0", "--subclass", "0", "--amount", "lots"], "not a number"),
    (["--class", "0", "--subclass", "0", "--amount", "2000000"], "largest"),
    (["--class", "2", "--subclass", "0", "--amount", "18201625"], "largest"),
    (["--class", "2", "--subclass", "1", "--amount", "65536"], "16 bits"),
    (["--class", "1", "--subclass", "2", "--amount", "1"], "class 1 subclass 2"),
    (["--class", "0", "--subclass", "0", "--amount", "1", "--random", "16"], "RND"),
])
def test_vend_refusals_exit_non_zero_with_the_reason(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["sts", "vend", *KEY04, "--issued", "2025-01-01T00:00", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_decode_refusal_reasons_in_json() -> None:
    vend = runner.invoke(app, ["sts", "vend", *KEY04, "--class", "0", "--subclass", "0",
                               "--amount", "1", "--issued", "2025-01-01T00:00"])
    digits = vend.output.strip()
    other = [*KEY04[:-1], "600727000000000017"]
    refused = runner.invoke(app, ["sts", "decode", digits, *other, "--json"])
    assert refused.exit_code == 1 and json.loads(refused.stdout)["refused"] == "crc"
    bad = runner.invoke(app, ["sts", "decode", "1" * 21, *KEY04, "--json"])
    assert bad.exit_code == 1 and json.loads(bad.stdout)["refused"] == "format"
    reserved = f"{1 << 28 | 1 << 27 | 12345:020d}"  # class bits (block bits 28, 27) = 3
    third = runner.invoke(app, ["sts", "decode", reserved, *KEY02, "--json"])
    assert third.exit_code == 1
    assert json.loads(third.stdout)["refused"] == "unsupported-class"


def test_key_change_refusals() -> None:
    bad_ken = runner.invoke(app, ["sts", "key-change", *KEY04, "--new-krn", "2", "--ken", "256"])
    assert bad_ken.exit_code == 2 and "key expiry number" in bad_ken.output
    bad_krn = runner.invoke(app, ["sts", "key-change", *KEY04, "--new-krn", "0"])
    assert bad_krn.exit_code == 2 and "key revision number" in bad_krn.output
    last = [*KEY04]
    last[last.index("--base-date") + 1] = "2035"
    no_next = runner.invoke(app, ["sts", "key-change", *last, "--new-krn", "2", "--rollover"])
    assert no_next.exit_code == 2 and "2035" in no_next.output


CTSA_04 = ["--vending-key", "abababababababab949494949494949401234567", "--dkga", "04", "--ea",
           "11", "--base-date", "1993", "--sgc", "123457", "--ti", "1", "--krn", "1", "--kt",
           "2", "--pan", "600727000000000009"]


def test_cli_reproduces_sts_531_1_0_04_vectors() -> None:
    # STS 531-1-0-04 CTSA05 step 1 and CTSA12 step 4 (sources: test_sts_vectors_dkga04.py)
    change = runner.invoke(app, ["sts", "key-change", *CTSA_04, "--new-krn", "1", "--new-ti",
                                 "2", "--json"])
    assert json.loads(change.output)["tokens"] == [
        "34812744915211133004", "46903925208523674737", "71464563847088610152",
        "67904239402617643990"]
    mpl = runner.invoke(app, ["sts", "vend", *CTSA_04, "--class", "2", "--subclass", "0",
                              "--amount", "20000", "--issued", "2004-04-01T07:15", "--random",
                              "5"])
    assert mpl.output.strip() == "06738975074638745925"

"""Replay every vector set of shared/conformance/gp/scp_vectors.json (skips when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smarthydra.card.gp.conformance import ConformanceReport, replay_vectors
from tests.conftest import CONFORMANCE, conformance_path


def _set_ids() -> list[str]:
    # Parametrise from the file when it is there; one placeholder id otherwise (it then skips).
    path = CONFORMANCE / "gp" / "scp_vectors.json"
    if not path.exists():
        return ["<no vector file>"]
    doc = json.loads(path.read_text())
    meta = doc.get("_meta", {}).get("verification", {}).get("per_set", {})
    return sorted(meta) or ["<no per-set list>"]


@pytest.fixture(scope="module")
def report() -> ConformanceReport:
    return replay_vectors(conformance_path("gp", "scp_vectors.json"))


@pytest.mark.parametrize("set_id", _set_ids())
def test_vector_set_reproduced(report: ConformanceReport, set_id: str) -> None:
    by_id = {s.set_id: s for s in report.sets}
    assert set_id in by_id, f"vector set {set_id} was not replayed"
    result = by_id[set_id]
    failures = [f for f in report.failures if f.set_id == set_id]
    assert result.checks > 0
    assert result.failed == 0, failures


def test_every_set_in_the_file_is_replayed(report: ConformanceReport) -> None:
    path = conformance_path("gp", "scp_vectors.json")
    meta = json.loads(path.read_text())["_meta"]["verification"]["per_set"]
    assert {s.set_id for s in report.sets} == set(meta)
    # Our replay checks the card side too, so it runs at least as many checks as the source's.
    assert report.checks >= 390
    assert report.failed == 0
    assert report.to_dict()["passed"] == report.checks


def _mutated(tmp_path: Path, mutate: object) -> Path:
    source = conformance_path("gp", "scp_vectors.json")
    doc = json.loads(source.read_text())
    assert callable(mutate)
    mutate(doc)
    out = tmp_path / "mutated.json"
    out.write_text(json.dumps(doc))
    return out


def _flip(hex_text: str, index: int = -4) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[index] ^= 0x01
    return raw.hex().upper()


def test_a_corrupted_wrapped_command_fails(tmp_path: Path) -> None:
    def mutate(doc: dict) -> None:  # type: ignore[type-arg]
        step = doc["scp03"][0]["steps"][0]
        step["wrapped"] = _flip(step["wrapped"])

    report = replay_vectors(_mutated(tmp_path, mutate))
    bad = [f for f in report.failures if f.set_id == "pysim_aes128_sl11"]
    # host produces different bytes; the card refuses the corrupted MAC (and then the session).
    assert any("host: step 0 wrap" in f.check for f in bad)
    assert any("card: step 0 unwrap" in f.check and "6982" in f.detail for f in bad)


def test_corrupted_scp11_receipt_and_scp02_and_kdf_fail(tmp_path: Path) -> None:
    def mutate(doc: dict) -> None:  # type: ignore[type-arg]
        doc["scp11"][0]["mutual_auth_resp_with_sw"] = _flip(
            doc["scp11"][0]["mutual_auth_resp_with_sw"]
        )
        doc["scp02"][0]["steps"][1]["wrapped"] = _flip(doc["scp02"][0]["steps"][1]["wrapped"])
        vector = doc["kbkdf_nist_sp800_108_counter_cmac_middle_fixed_r8"]["vectors"][0]
        vector["KO"] = _flip(vector["KO"], 0)
        doc["scp03_gpp_plaintextkeys"]["tests"][0]["kcv_asserts"][0]["kcv"] = "000000"

    report = replay_vectors(_mutated(tmp_path, mutate))
    failed_sets = {f.set_id for f in report.failures}
    assert {
        "samsung_scp11ap256aes128s8",
        "pysim_scp02_3des_kvn20",
        "kbkdf_sp800_108_cmac_middle_r8",
        "gpp_TestPlaintextKeys",
    } <= failed_sets
    receipt = [f for f in report.failures if f.set_id == "samsung_scp11ap256aes128s8"]
    assert any("receipt" in f.check for f in receipt)


def test_malformed_files_are_reported_not_raised(tmp_path: Path) -> None:
    missing = replay_vectors(tmp_path / "absent.json")
    assert missing.failed == 1 and "cannot read" in missing.failures[0].detail
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"scp03": [{"id": "x", "keys": {}}], "mystery": 1}))
    report = replay_vectors(bad)
    assert report.failed >= 2
    assert {f.set_id for f in report.failures} == {"x", "mystery"}

"""Change of supplier and the recovery drills with the CA and party keys in SoftHSM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.crypto import softhsm
from smarthydra.crypto.keystore import Keystore
from smarthydra.sim.scenarios.cos import KeystoresFor, run_cos, softhsm_scenario_keystores
from smarthydra.sim.scenarios.recovery import run_recovery
from smarthydra.sim.world import KeystoreFactory

pytestmark = pytest.mark.softhsm
runner = CliRunner()


@pytest.fixture(autouse=True)
def _needs_softhsm() -> None:
    reason = softhsm.unavailable_reason()
    if reason:
        pytest.skip(reason)


def _recording(base: KeystoresFor, seen: dict[tuple[str, str], Keystore]) -> KeystoresFor:
    def for_world(name: str) -> KeystoreFactory:
        factory = base(name)

        def keystore(party: str) -> Keystore:
            store = factory(party)
            seen[(name, party)] = store
            return store

        return keystore

    return for_world


def test_change_of_supplier_with_keys_in_softhsm(tmp_path: Path) -> None:
    from smarthydra.crypto.pkcs11store import Pkcs11Keystore

    seen: dict[tuple[str, str], Keystore] = {}
    report = run_cos(1, keystores_for=_recording(softhsm_scenario_keystores(tmp_path), seen))
    assert report.ok, report.to_dict()
    for party in ("smki", "supplier", "network-operator", "dcc-acb", "gaining-supplier"):
        assert isinstance(seen[("cos", party)], Pkcs11Keystore), party
    # The gaining supplier signs with a key the token holds and never releases.
    assert "ds" in seen[("cos", "gaining-supplier")]


def test_recovery_drills_with_keys_in_softhsm(tmp_path: Path) -> None:
    from smarthydra.crypto.pkcs11store import Pkcs11Keystore

    seen: dict[tuple[str, str], Keystore] = {}
    report = run_recovery(1, keystores_for=_recording(softhsm_scenario_keystores(tmp_path), seen))
    assert report.ok, report.to_dict()
    assert isinstance(seen[("supplier-key", "supplier-new")], Pkcs11Keystore)
    assert isinstance(seen[("root", "smki-new")], Pkcs11Keystore)  # the replacement root CA
    assert isinstance(seen[("smki-dual", "smki-new")], Pkcs11Keystore)
    assert {name for name, _ in seen} == {"supplier-key", "root", "smki-gb", "smki-dual"}


def test_demo_cos_and_recovery_with_hsm_through_the_cli() -> None:
    for scenario in ("cos", "recovery"):
        result = runner.invoke(
            app, ["demo", "--scenario", scenario, "--hsm", "--homes", "2", "--json"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["ok"] is True
    result = runner.invoke(app, ["demo", "--scenario", "hydra", "--hsm"])
    assert result.exit_code == 2 and "cos and recovery" in result.output

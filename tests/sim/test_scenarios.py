"""Change of supplier and the recovery drills, in process and through ``smarthydra demo``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, ServiceRequest
from smarthydra.gbcs.envelope import decode_general_signing
from smarthydra.pki.credentials import CellRole, CredentialsReplacementMode, decode_command
from smarthydra.pki.profile import SmkiRole
from smarthydra.sim.scenarios.cos import run_cos
from smarthydra.sim.scenarios.recovery import (
    drill_compromised_smki,
    drill_root,
    drill_supplier_key,
)
from smarthydra.sim.scenarios.smki import (
    NEW_SUPPLIER_EUI,
    enable_smki,
    issue_organisation_keys,
    krp_body,
)
from smarthydra.sim.world import SUPPLIER_EUI, build_world

runner = CliRunner()


def test_change_of_supplier_end_to_end() -> None:
    world = build_world(2)
    report = run_cos(world=world)
    assert report.ok, report.to_dict()
    assert report.losing_dcc_refusals == {"E4": 2}
    for home in world.homes:
        anchors = home.esme.anchors
        assert anchors is not None
        assert anchors.subject(CellRole.SUPPLIER) == NEW_SUPPLIER_EUI.value
        # The supplier floors moved: the new supplier started from 0, then counted up.
        assert home.esme.anti_replay_floor[NEW_SUPPLIER_EUI.value] > 0


def test_drill_compromised_supplier_key() -> None:
    report = drill_supplier_key(2)
    assert report.ok, report.steps
    assert report.steps["dcc_refuses_revoked_supplier"] == "E1"
    assert report.steps["attacker_old_key_rejected_by_meters"] == 2


def test_drill_compromised_root() -> None:
    report = drill_root(2)
    assert report.ok, report.steps
    assert report.steps["old_root_certificates_refused"] == 2


def test_drill_dual_certification() -> None:
    report = drill_compromised_smki(2)
    assert report.ok, report.steps
    assert report.steps["meters_taken_over_gb_only"] == 2
    assert report.steps["meters_taken_over_dual"] == 0


def test_demo_scenarios_through_the_cli() -> None:
    result = runner.invoke(app, ["demo", "--scenario", "cos", "--homes", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True
    result = runner.invoke(app, ["demo", "--scenario", "recovery", "--homes", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and len(report["drills"]) == 3
    result = runner.invoke(app, ["demo", "--scenario", "cos", "--homes", "2"])
    assert result.exit_code == 0 and "change of supplier" in result.output
    result = runner.invoke(app, ["demo", "--scenario", "nope"])
    assert result.exit_code == 2 and "unknown scenario" in result.output


def test_krp_credentials_update_goes_through_the_dcc_transform() -> None:
    """6.15.1 with the XSD body: the DCC's pre-command carries the requester's new
    certificates in its own cells; someone else's certificates are refused (E11)."""
    world = build_world(1)
    operations = enable_smki(world)
    supplier = world.supplier
    home = world.homes[0]
    new_keys = issue_organisation_keys(
        world.smki, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds", "ka")
    )
    body = krp_body(new_keys, operations.path(), "Supplier")
    rid = supplier.next_request_id(home.esme.eui)
    request = ServiceRequest(
        rid, SUPPLIER_EUI, "IS", "6.15.1", CommandVariant.CRITICAL_TRANSFORM, body
    )
    response = world.dcc.submit(request)
    assert response.ok, (response.code, response.detail)
    assert response.gbcs is not None
    precommand = decode_general_signing(response.gbcs)
    update = decode_command(precommand.payload)
    assert update.control.mode is CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER
    assert update.control.seq_number == rid.counter
    assert [r.certificate for r in update.replacements] == [
        new_keys.certificates["ds"].der,
        new_keys.certificates["ka"].der,
    ]
    assert update.path == operations.path()

    stranger = issue_organisation_keys(
        world.smki, world.repository, NEW_SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds", "ka")
    )
    refused = world.dcc.submit(
        ServiceRequest(
            supplier.next_request_id(home.esme.eui),
            SUPPLIER_EUI,
            "IS",
            "6.15.1",
            CommandVariant.CRITICAL_TRANSFORM,
            krp_body(stranger, operations.path(), "Supplier"),
        )
    )
    assert not refused.ok and refused.code is ResponseCode.INVALID_REQUEST
    assert "own certificates" in (refused.detail or "")

"""Trust-anchor cells and every CS02b variant, through the DCC to the meter and back."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.dcc.acb import AccessControlBroker
from smarthydra.dcc.inventory import DeviceRecord, DeviceType
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, ServiceRequest, SignedPreCommand
from smarthydra.eui import Eui64
from smarthydra.gbcs.builder import sign_precommand
from smarthydra.gbcs.der import decode_der
from smarthydra.gbcs.envelope import decode_general_signing, decode_message
from smarthydra.parties.party import Outcome
from smarthydra.pki.credentials import (
    ROOT_CELL,
    CellId,
    CellKeyUsage,
    CellRole,
    CellUsage,
    CredentialsReplacementMode,
    ExecutionOutcome,
    SeqNumberChange,
    StatusCode,
    UpdateSecurityCredentialsResponse,
    decode_response,
    encode_response,
)
from smarthydra.pki.hierarchy import CaHierarchy
from smarthydra.pki.profile import SmkiRole
from smarthydra.premises.anchors import AnchorDrop, DeviceTrustAnchors
from smarthydra.premises.hub import CommsHub
from smarthydra.sim.scenarios.smki import (
    CONTINGENCY_EUI,
    NEW_SUPPLIER_EUI,
    RECOVERY_EUI,
    TRANS_COS_EUI,
    WAN_PROVIDER_EUI,
    DccSecurityOperations,
    OrganisationKeys,
    change_of_supplier_body,
    enable_smki,
    issue_organisation_keys,
    krp_body,
    read_response,
    replace_user_key,
)
from smarthydra.sim.world import NETWORK_OPERATOR_EUI, START, SUPPLIER_EUI, World, build_world
from tests.conftest import CONFORMANCE

Mode = CredentialsReplacementMode
SUPPLIER_DS = CellId(CellRole.SUPPLIER, CellKeyUsage.DIGITAL_SIGNATURE)
RTDS = CONFORMANCE / "gbcs" / "rtds-4.5.0"


@pytest.fixture
def world() -> World:
    return build_world(1, conformance=CONFORMANCE if CONFORMANCE.is_dir() else None)


@pytest.fixture
def ops(world: World) -> DccSecurityOperations:
    return enable_smki(world)


def _anchors(world: World) -> DeviceTrustAnchors:
    anchors = world.homes[0].esme.anchors
    assert anchors is not None
    return anchors


def _esme(world: World) -> Eui64:
    return world.homes[0].esme.eui


def _statuses(response: UpdateSecurityCredentialsResponse) -> list[int]:
    assert response.outcome is not None
    return [o.status for o in response.outcome.outcomes]


def _krp(
    world: World,
    ops: DccSecurityOperations,
    party_eui: Eui64,
    role: str,
    keystore: Keystore,
    new: OrganisationKeys,
    execute_at: dt.datetime | None = None,
) -> tuple[ResponseCode, bytes | None]:
    """SRV 6.15.1 through the DCC: CV 4 pre-command, sign, CV 5."""
    party = world.supplier if role == "IS" else world.network_operator
    rid = party.next_request_id(_esme(world))
    params = krp_body(new, ops.path(), "Supplier" if role == "IS" else "NetworkOperator")
    first = world.dcc.submit(
        ServiceRequest(
            rid,
            party_eui,
            role,
            "6.15.1",
            CommandVariant.CRITICAL_TRANSFORM,
            params,
            execution_datetime=execute_at,
        )
    )
    assert first.code is ResponseCode.SUCCESS and first.gbcs is not None, first.detail
    signed = sign_precommand(first.gbcs, keystore=keystore, label="ds")
    second = world.dcc.submit_signed(
        SignedPreCommand(
            rid, party_eui, role, "6.15.1", CommandVariant.CRITICAL_SIGNED_TO_DEVICE, signed.wire()
        )
    )
    return second.code, second.gbcs


def test_supplier_by_supplier_through_the_dcc(world: World, ops: DccSecurityOperations) -> None:
    old_ds_key = _anchors(world).cells[SUPPLIER_DS].key_id
    new = issue_organisation_keys(
        world.smki, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds", "ka", "pp-ka")
    )
    frames = _record_frames(world)
    code, wire = _krp(world, ops, SUPPLIER_EUI, "IS", world.supplier.keystore, new)
    assert code is ResponseCode.SUCCESS
    cs02b = frames[-1]
    response = read_response(world, wire, _esme(world), SUPPLIER_EUI)
    assert _statuses(response) == [0, 0, 0]
    assert response.outcome is not None
    assert response.outcome.outcomes[0].existing_key_id == old_ds_key
    assert response.outcome.outcomes[0].replacing_key_id == new.certificates["ds"].subject_key_id
    assert response.outcome.changes == (SeqNumberChange(2, 0, 0),)  # as in the RTDS
    # The same structure as the RTDS response (same DER tree, same fixed-length forms).
    rtds = RTDS / "6.15.1_CS02bSupplierBySupplier"
    if rtds.is_dir():
        reference = decode_general_signing(
            bytes.fromhex(
                "".join(
                    (rtds / "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
                    .read_text()
                    .split()
                )
            )
        )
        ours = decode_message(wire or b"").general_signing
        assert ours.message_code == reference.message_code == 0x0102
        assert ours.is_signed and reference.is_signed
        ours_tree = decode_der(ours.payload)
        reference_tree = decode_der(reference.payload)
        assert len(ours_tree.children[1].children[3].children) == 3
        assert [c.identifier for c in ours_tree.children[1].children] == [
            c.identifier for c in reference_tree.children[1].children
        ]
    # The supplier now signs with its new key; the DCC learns it; the meter accepts it.
    replace_user_key(world, SUPPLIER_EUI, new.keystore)
    world.supplier.keystore = new.keystore
    assert world.supplier.disable_supply(world.dcc, _esme(world)).outcome is Outcome.DONE
    # Replaying the CS02b command is dropped by the meter.
    assert world.homes[0].esme.receive(cs02b) is None
    assert _anchors(world).log[-1].reason is AnchorDrop.REPLAY


def _record_frames(world: World) -> list[bytes]:
    """Every frame the WAN carries from now on (to replay one)."""
    frames: list[bytes] = []
    deliver = world.wan.deliver

    def recording(hub: Eui64, message: bytes) -> bytes | None:
        frames.append(message)
        return deliver(hub, message)

    world.wan.deliver = recording  # type: ignore[method-assign]
    return frames


def test_top_up_floor_moves_with_the_supplier(world: World, ops: DccSecurityOperations) -> None:
    anchors = _anchors(world)
    anchors.top_up_floors[CellRole.SUPPLIER] = 77
    new = issue_organisation_keys(
        world.smki, world.repository, NEW_SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds", "ka", "pp-ka")
    )
    wire = ops.replace_by_recovery(
        _esme(world),
        [(c, cert.der) for c, cert in new.replacements()],
        other_changes=(SeqNumberChange(CellRole.SUPPLIER, 5, 3),),
    )
    assert _statuses(read_response(world, wire, _esme(world), RECOVERY_EUI)) == [0, 0, 0]
    assert anchors.top_up_floors[CellRole.SUPPLIER] == 3  # a new party: set exactly
    assert anchors.seq_floors[CellRole.SUPPLIER] == 5
    assert world.homes[0].esme.anti_replay_floor[NEW_SUPPLIER_EUI.value] == 5


def test_network_operator_by_network_operator(world: World, ops: DccSecurityOperations) -> None:
    new = issue_organisation_keys(
        world.smki,
        world.repository,
        NETWORK_OPERATOR_EUI,
        SmkiRole.NETWORK_OPERATOR,
        ("ds", "ka"),
    )
    code, wire = _krp(world, ops, NETWORK_OPERATOR_EUI, "ED", world.network_operator.keystore, new)
    assert code is ResponseCode.SUCCESS
    response = read_response(world, wire, _esme(world), NETWORK_OPERATOR_EUI)
    assert _statuses(response) == [0, 0]
    assert (
        response.outcome is not None
        and response.outcome.mode == Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR
    )
    world.network_operator.keystore = new.keystore
    assert (
        world.network_operator.read_import_registers(world.dcc, _esme(world)).outcome
        is Outcome.DONE
    )


def test_supplier_by_trans_cos_through_6_23(world: World, ops: DccSecurityOperations) -> None:
    from smarthydra.sim.scenarios.cos import run_cos

    report = run_cos(world=world)
    assert report.ok, report.to_dict()
    assert _anchors(world).subject(CellRole.SUPPLIER) == NEW_SUPPLIER_EUI.value


def test_6_23_with_someone_elses_certificates_is_refused(
    world: World, ops: DccSecurityOperations
) -> None:
    other = issue_organisation_keys(
        world.smki, world.repository, NEW_SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds", "ka")
    )
    rid = world.supplier.next_request_id(_esme(world))
    response = world.dcc.submit(
        ServiceRequest(
            rid,
            SUPPLIER_EUI,
            "IS",
            "6.23",
            CommandVariant.NON_CRITICAL_TO_DEVICE,
            change_of_supplier_body(other, ops.path(), world.homes[0].mpan),
        )
    )
    assert response.code is ResponseCode.INVALID_REQUEST
    assert "gaining supplier's own certificates" in response.detail


@pytest.mark.parametrize(
    ("mode", "role", "eui"),
    [
        (Mode.ACB_BY_ACB, SmkiRole.ACCESS_CONTROL_BROKER, "90B3D51F30000002"),
        (Mode.TRANS_COS_BY_TRANS_COS, SmkiRole.TRANSITIONAL_COS, "90B3D51F30000004"),
    ],
)
def test_dcc_parties_replace_their_own_cells(
    world: World, ops: DccSecurityOperations, mode: Mode, role: SmkiRole, eui: str
) -> None:
    labels = ("ka",) if mode is Mode.ACB_BY_ACB else ("ds",)
    new = issue_organisation_keys(world.smki, world.repository, Eui64.parse(eui), role, labels)
    old = {
        Mode.WAN_PROVIDER_BY_WAN_PROVIDER: ops.wan_provider,
        Mode.TRANS_COS_BY_TRANS_COS: ops.trans_cos,
    }.get(mode)
    wire = ops.replace_own(mode, _esme(world), new, old)
    response = read_response(world, wire, _esme(world), Eui64.parse(eui))
    assert _statuses(response) == [0]
    cell = next(iter(c for c, _ in new.replacements()))
    assert _anchors(world).cells[cell].key_id == new.certificates[labels[0]].subject_key_id
    if mode is Mode.ACB_BY_ACB:
        # The old ACB key no longer MACs for this meter; the new one does.
        assert world.supplier.read_import_registers(world.dcc, _esme(world)).outcome is (
            Outcome.NO_RESPONSE
        )
        world.dcc.acb = AccessControlBroker(world.dcc.acb.eui, new.keystore, "ka")
        assert world.supplier.read_import_registers(world.dcc, _esme(world)).outcome is (
            Outcome.DONE
        )
    if mode is Mode.TRANS_COS_BY_TRANS_COS:
        ops.trans_cos = OrganisationKeys(new.eui, new.role, new.keystore, new.certificates)


def _hub_with_anchors(world: World, ops: DccSecurityOperations) -> CommsHub:
    """The comms hub as GB has it: the WAN provider's cell is on the CHF (with the root,
    recovery and ACB cells); the DCC knows the CHF and the SMKI holds its certificates."""
    hub = world.homes[0].hub
    hub_keys = SoftKeystore(None, passphrase=b"chf")
    hub_keys.generate("ds", KeyUsage.DIGITAL_SIGNATURE)  # the CHF applet holds only the KA key
    for usage, key in (
        (KeyUsage.DIGITAL_SIGNATURE, hub_keys.public_key("ds")),
        (KeyUsage.KEY_AGREEMENT, hub.key_agreement_key),
    ):
        world.repository.publish(
            world.smki.issue_device(
                subject_public_key=key, eui64=hub.eui.value, usage=usage, not_before=START
            )
        )
    world.dcc.inventory.add_device(
        DeviceRecord(
            hub.eui, DeviceType.COMMS_HUB, hub.eui, world.homes[0].mpan, hub.key_agreement_key
        )
    )
    esme_cells = _anchors(world).cells
    hub.anchors = DeviceTrustAnchors(
        hub.eui.value,
        hub_keys,
        world.clock,
        {
            cell: esme_cells[cell]
            for cell in (
                ROOT_CELL,
                CellId(CellRole.RECOVERY, CellKeyUsage.DIGITAL_SIGNATURE),
                CellId(CellRole.ACCESS_CONTROL_BROKER, CellKeyUsage.KEY_AGREEMENT),
                WAN_PROVIDER_DS,
            )
        },
    )
    return hub


WAN_PROVIDER_DS = CellId(CellRole.WAN_PROVIDER, CellKeyUsage.DIGITAL_SIGNATURE)


def test_wan_provider_by_wan_provider_on_the_comms_hub(
    world: World, ops: DccSecurityOperations
) -> None:
    """As in the RTDS (WPByWP goes to a device other than the ESME): the DCC MACs the command
    for the CHF, the hub checks the ACB MAC and hands it to its own cells."""
    hub = _hub_with_anchors(world, ops)
    assert hub.anchors is not None
    new = issue_organisation_keys(
        world.smki, world.repository, WAN_PROVIDER_EUI, SmkiRole.WAN_PROVIDER, ("ds",)
    )
    wire = ops.replace_own(Mode.WAN_PROVIDER_BY_WAN_PROVIDER, hub.eui, new, ops.wan_provider)
    response = read_response(world, wire, hub.eui, WAN_PROVIDER_EUI)
    assert _statuses(response) == [0]
    assert response.outcome is not None and response.outcome.changes == (
        SeqNumberChange(CellRole.WAN_PROVIDER, 0, None),
    )
    assert hub.anchors.cells[WAN_PROVIDER_DS].key_id == new.certificates["ds"].subject_key_id
    # The old WAN provider key can no longer authorise a change on the hub.
    again = issue_organisation_keys(
        world.smki, world.repository, WAN_PROVIDER_EUI, SmkiRole.WAN_PROVIDER, ("ds",)
    )
    assert (
        ops.replace_own(Mode.WAN_PROVIDER_BY_WAN_PROVIDER, hub.eui, again, ops.wan_provider) is None
    )
    assert hub.anchors.log[-1].reason is AnchorDrop.SIGNATURE
    # A WPByWP command not MAC'd by the ACB never reaches the cells.
    before = len(hub.anchors.log)
    counter = ops.next_counter(CellRole.WAN_PROVIDER, 8000)
    gs = ops.command(
        mode=Mode.WAN_PROVIDER_BY_WAN_PROVIDER,
        originator=WAN_PROVIDER_EUI,
        device=hub.eui,
        counter=counter,
        replacements=[(c, cert.der) for c, cert in again.replacements()],
    )
    signed = sign_precommand(gs, keystore=new.keystore, label="ds")
    assert hub.receive_from_wan(signed.wire()) is None
    assert len(hub.anchors.log) == before


def test_any_except_abnormal_root_by_recovery_signed_only(
    world: World, ops: DccSecurityOperations
) -> None:
    new = issue_organisation_keys(
        world.smki, world.repository, NETWORK_OPERATOR_EUI, SmkiRole.NETWORK_OPERATOR, ("ds",)
    )
    wire = ops.replace_by_recovery(
        _esme(world), [(c, cert.der) for c, cert in new.replacements()], maced=False
    )
    assert _statuses(read_response(world, wire, _esme(world), RECOVERY_EUI)) == [0]


def test_unmacd_supplier_update_is_dropped(world: World, ops: DccSecurityOperations) -> None:
    new = issue_organisation_keys(
        world.smki, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds",)
    )
    counter = world.supplier.counter + 50
    gs = ops.command(
        mode=Mode.SUPPLIER_BY_SUPPLIER,
        originator=SUPPLIER_EUI,
        device=_esme(world),
        counter=counter,
        replacements=[(c, cert.der) for c, cert in new.replacements()],
    )
    signed = sign_precommand(gs, keystore=world.supplier.keystore, label="ds")
    assert ops.send(_esme(world), signed, maced=False) is None
    assert _anchors(world).log[-1].reason is AnchorDrop.MAC_REQUIRED


def test_wrong_signer_and_wrong_authoriser_are_dropped(
    world: World, ops: DccSecurityOperations
) -> None:
    new = issue_organisation_keys(
        world.smki, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds",)
    )
    replacements = [(c, cert.der) for c, cert in new.replacements()]
    gs = ops.command(
        mode=Mode.SUPPLIER_BY_SUPPLIER,
        originator=SUPPLIER_EUI,
        device=_esme(world),
        counter=5000,
        replacements=replacements,
    )
    forged = sign_precommand(gs, keystore=new.keystore, label="ds")  # not the anchored key
    assert ops.send(_esme(world), forged) is None
    assert _anchors(world).log[-1].reason is AnchorDrop.SIGNATURE
    gs = ops.command(
        mode=Mode.SUPPLIER_BY_SUPPLIER,
        originator=NETWORK_OPERATOR_EUI,
        device=_esme(world),
        counter=5001,
        replacements=replacements,
    )
    signed = sign_precommand(gs, keystore=world.network_operator.keystore, label="ds")
    assert ops.send(_esme(world), signed) is None
    assert _anchors(world).log[-1].reason is AnchorDrop.WRONG_AUTHORISER


def test_each_replacement_stands_alone(world: World, ops: DccSecurityOperations) -> None:
    before = dict(_anchors(world).cells)
    new = issue_organisation_keys(
        world.smki, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds", "ka")
    )
    # An NO certificate offered for a supplier cell, and a KA certificate from another SMKI.
    rogue = CaHierarchy.create(
        SoftKeystore(None, passphrase=b"rogue"),
        not_before=START,
        not_after=START + dt.timedelta(days=3650),
        device_ca_capacity=1,
        label_prefix="rogue",
    )
    foreign = issue_organisation_keys(
        rogue, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ka",)
    )
    replacements = [
        (SUPPLIER_DS, new.certificates["ds"].der),
        (CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT), foreign.certificates["ka"].der),
        (
            CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT),
            world.repository.by_eui64(NETWORK_OPERATOR_EUI.value, usage=KeyUsage.KEY_AGREEMENT)[
                0
            ].der,
        ),
    ]
    wire = ops.replace_by_recovery(_esme(world), replacements)
    response = read_response(world, wire, _esme(world), RECOVERY_EUI)
    # As in the RTDS error example: the valid replacement is applied, the others keep their
    # cell and report why (existing == replacing).
    assert _statuses(response) == [
        StatusCode.SUCCESS,
        StatusCode.NO_TRUST_ANCHOR,
        StatusCode.BAD_CERTIFICATE,
    ]
    cells = _anchors(world).cells
    assert cells[SUPPLIER_DS].key_id == new.certificates["ds"].subject_key_id
    supplier_ka = CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT)
    assert cells[supplier_ka] == before[supplier_ka]
    assert response.outcome is not None
    for outcome in response.outcome.outcomes[1:]:
        assert outcome.existing_key_id == outcome.replacing_key_id


@pytest.mark.parametrize("variant", ["SUCCESS", "ERROR"])
def test_any_by_contingency_matches_the_rtds_responses(
    world: World, ops: DccSecurityOperations, variant: str
) -> None:
    """The RTDS has the two anyByContingency responses only: we replace the same cells in the
    same order (a new root, every cell re-certified under it; in the error example the
    prepayment top-up certificate comes from another CA) and get the same outcome."""
    from smarthydra.sim.scenarios.recovery import reissue_all

    path = (
        RTDS / "NA_CS02bAnyByContingency" / f"CS02bAnyByContingency_NA_{variant}_RESPONSE_GBCS.HEX"
    )
    if not path.exists():
        pytest.skip(f"conformance data not found: {path}")
    rtds_payload = decode_message(
        bytes.fromhex("".join(path.read_text().split()))
    ).general_signing.payload
    reference = decode_response(rtds_payload).outcome
    assert reference is not None
    new_smki = _hierarchy("ROOT2", "c2")
    for ca in new_smki.ca_certificates:
        world.repository.publish(ca)
    reissued = dict(reissue_all(world, new_smki))
    replacements = [
        (o.cell, new_smki.root.der if o.cell == ROOT_CELL else reissued[o.cell].der)
        for o in reference.outcomes
    ]
    top_up = CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP)
    if variant == "ERROR":
        rogue = _hierarchy("ROGUE", "rogue")
        certificate = rogue.issue_organisation(
            subject_public_key=reissued[top_up].public_key,
            role=SmkiRole.SUPPLIER,
            eui64=SUPPLIER_EUI.value,
            usage=KeyUsage.KEY_AGREEMENT,
            not_before=START,
            not_after=START + dt.timedelta(days=3650),
        )
        replacements = [(c, certificate.der if c == top_up else d) for c, d in replacements]
    wire = ops.replace_by_contingency(
        _esme(world),
        replacements,
        path=(new_smki.organisation_ca.der,),
        other_changes=reference.changes[1:],
    )
    ours = read_response(world, wire, _esme(world), CONTINGENCY_EUI).outcome
    assert ours is not None
    assert ours.mode == reference.mode and ours.changes == reference.changes
    assert [(o.cell, o.status) for o in ours.outcomes] == [
        (o.cell, o.status) for o in reference.outcomes
    ]
    for mine, theirs in zip(ours.outcomes, reference.outcomes, strict=True):
        if theirs.status != StatusCode.SUCCESS:  # a refused cell keeps its contents
            assert mine.existing_key_id == mine.replacing_key_id
            assert theirs.existing_key_id == theirs.replacing_key_id
    # With the RTDS's identities and sequence number in place of ours, the bytes are the RTDS's.
    masked = ExecutionOutcome(
        reference.seq_number,
        ours.mode,
        ours.changes,
        tuple(
            dataclasses.replace(
                mine,
                existing_subject=theirs.existing_subject,
                existing_key_id=theirs.existing_key_id,
                replacing_subject=theirs.replacing_subject,
                replacing_key_id=theirs.replacing_key_id,
            )
            for mine, theirs in zip(ours.outcomes, reference.outcomes, strict=True)
        ),
    )
    assert encode_response(UpdateSecurityCredentialsResponse(masked)) == rtds_payload
    assert _anchors(world).cells[ROOT_CELL].key_id == new_smki.root.subject_key_id


def _hierarchy(root_name: str, prefix: str) -> CaHierarchy:
    return CaHierarchy.create(
        SoftKeystore(None, passphrase=prefix.encode()),
        not_before=START,
        not_after=START + dt.timedelta(days=36500),
        device_ca_capacity=1,
        label_prefix=prefix,
        root_name=root_name,
    )


def test_normal_root_replacement_needs_a_link_certificate(
    world: World, ops: DccSecurityOperations
) -> None:
    new_root = CaHierarchy.create(
        SoftKeystore(None, passphrase=b"r2"),
        not_before=START,
        not_after=START + dt.timedelta(days=36500),
        device_ca_capacity=1,
        label_prefix="r2",
        root_name="ROOT2",
    )
    # Root by supplier without a link certificate: refused.
    counter = world.supplier.counter + 100
    gs = ops.command(
        mode=Mode.ROOT_BY_SUPPLIER,
        originator=SUPPLIER_EUI,
        device=_esme(world),
        counter=counter,
        replacements=[(ROOT_CELL, new_root.root.der)],
        path=(),
    )
    wire = ops.send(_esme(world), sign_precommand(gs, keystore=world.supplier.keystore, label="ds"))
    assert _statuses(read_response(world, wire, _esme(world), SUPPLIER_EUI)) == [
        StatusCode.NO_TRUST_ANCHOR
    ]
    # With the current root's link certificate for the new root key: replaced.
    link = world.smki.certify_ca(
        subject_name_der=new_root.root.subject_der,
        subject_public_key=new_root.root.public_key,
        not_before=START,
    )
    gs = ops.command(
        mode=Mode.ROOT_BY_SUPPLIER,
        originator=SUPPLIER_EUI,
        device=_esme(world),
        counter=counter + 1,
        replacements=[(ROOT_CELL, new_root.root.der)],
        path=(link.der,),
    )
    wire = ops.send(_esme(world), sign_precommand(gs, keystore=world.supplier.keystore, label="ds"))
    assert _statuses(read_response(world, wire, _esme(world), SUPPLIER_EUI)) == [0]
    assert _anchors(world).cells[ROOT_CELL].key_id == new_root.root.subject_key_id


def test_any_by_contingency_replaces_the_root(world: World, ops: DccSecurityOperations) -> None:
    from smarthydra.sim.scenarios.recovery import drill_root

    report = drill_root(1, conformance=CONFORMANCE if CONFORMANCE.is_dir() else None)
    assert report.ok, report.steps
    # A wrong symmetric key cannot unwrap the contingency key: dropped.
    wire = ops.replace_by_contingency(_esme(world), [], path=(), wrapping_key=bytes(16))
    assert wire is None
    assert _anchors(world).log[-1].reason is AnchorDrop.CONTINGENCY_KEY
    # The right key but a signature from another key: dropped.
    other = SoftKeystore(None, passphrase=b"x")
    other.generate("ds", KeyUsage.DIGITAL_SIGNATURE)
    assert ops.replace_by_contingency(_esme(world), [], path=(), contingency_keys=other) is None
    assert _anchors(world).log[-1].reason is AnchorDrop.SIGNATURE
    wire = ops.replace_by_contingency(_esme(world), [], path=())
    response = read_response(world, wire, _esme(world), CONTINGENCY_EUI)
    assert response.outcome is not None and response.outcome.mode == Mode.ANY_BY_CONTINGENCY


def test_dual_certification_refuses_a_single_ca(world: World) -> None:
    ops = enable_smki(world, independent_root=True)
    new = issue_organisation_keys(
        world.smki, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds",)
    )
    replacements = [(c, cert.der) for c, cert in new.replacements()]
    wire = ops.replace_by_recovery(
        _esme(world), replacements, path=(world.smki.organisation_ca.der,)
    )
    assert _statuses(read_response(world, wire, _esme(world), RECOVERY_EUI)) == [
        StatusCode.NO_TRUST_ANCHOR
    ]
    independent = ops.independent
    assert independent is not None
    vouch = independent.issue_organisation(
        subject_public_key=new.certificates["ds"].public_key,
        role=SmkiRole.SUPPLIER,
        eui64=SUPPLIER_EUI.value,
        usage=KeyUsage.DIGITAL_SIGNATURE,
        not_before=START,
        not_after=START + dt.timedelta(days=3650),
    )
    wire = ops.replace_by_recovery(_esme(world), replacements, path=(*ops.path(), vouch.der))
    assert _statuses(read_response(world, wire, _esme(world), RECOVERY_EUI)) == [0]


def test_the_meter_uses_the_anchored_parties(world: World, ops: DccSecurityOperations) -> None:
    anchors = _anchors(world)
    assert {CellRole(c.role) for c in anchors.cells} == set(CellRole) - {
        CellRole.ISSUING_AUTHORITY,
        CellRole.OTHER,
    }
    party = anchors.remote_party(CellRole.SUPPLIER)
    assert party is not None and party.eui == SUPPLIER_EUI
    assert anchors.subject(CellRole.TRANSITIONAL_COS) == TRANS_COS_EUI.value
    assert anchors.subject(CellRole.WAN_PROVIDER) == WAN_PROVIDER_EUI.value
    assert anchors.subject(CellRole.RECOVERY) == RECOVERY_EUI.value
    assert world.supplier.read_import_registers(world.dcc, _esme(world)).outcome is Outcome.DONE


def test_garbage_cs02b_payload_is_dropped(world: World, ops: DccSecurityOperations) -> None:
    from smarthydra.gbcs.builder import build_precommand

    gs = build_precommand(
        originator=SUPPLIER_EUI.value,
        recipient=_esme(world).value,
        counter=9000,
        message_code=0x0102,
        payload=bytes.fromhex("3003020102"),
    )
    signed = sign_precommand(gs, keystore=world.supplier.keystore, label="ds")
    assert ops.send(_esme(world), signed) is None
    assert _anchors(world).log[-1].reason is AnchorDrop.MALFORMED


def test_paths_exist() -> None:
    assert Path(__file__).name.startswith("test_anchors")


def test_future_dated_supplier_update_through_the_dcc_and_its_alert(
    world: World, ops: DccSecurityOperations
) -> None:
    """6.15.1 future-dated: the meter answers commandAccepted, executes at the date-time and
    alerts 8F66, which the DCC reports to the supplier as a FutureDatedDeviceAlertMessage."""
    from smarthydra.dcc.responses import decode_device_message, device_alert
    from smarthydra.pki.credentials import FUTURE_DATED_EXECUTED, decode_alert

    old = _anchors(world).cells[SUPPLIER_DS]
    new = issue_organisation_keys(
        world.smki, world.repository, SUPPLIER_EUI, SmkiRole.SUPPLIER, ("ds", "ka")
    )
    execute_at = world.clock.now() + dt.timedelta(days=2)
    code, wire = _krp(world, ops, SUPPLIER_EUI, "IS", world.supplier.keystore, new, execute_at)
    assert code is ResponseCode.SUCCESS
    assert read_response(world, wire, _esme(world), SUPPLIER_EUI).outcome is None  # accepted
    esme = world.homes[0].esme
    assert esme.drain_alerts() == [] and _anchors(world).cells[SUPPLIER_DS] == old
    world.clock.advance(dt.timedelta(days=2))
    (alert,) = esme.drain_alerts()
    assert _anchors(world).cells[SUPPLIER_DS].key_id == new.certificates["ds"].subject_key_id
    message = decode_device_message(alert)
    assert message.alert_code == FUTURE_DATED_EXECUTED
    assert message.recipient == SUPPLIER_EUI.value
    parsed = decode_alert(decode_general_signing(alert).payload)
    assert parsed.time == execute_at and [o.status for o in parsed.outcome.outcomes] == [0, 0]
    document = device_alert(
        alert, at=world.clock.now(), service_reference_for=lambda _code: "6.15.1"
    )
    text = document.findtext(".//{*}FutureDatedAlertCode")
    assert text == "8F66"
    assert message.reported_counter == parsed.outcome.seq_number

"""Joins (8.7.1/8.7.2) and device log restores (8.12.1/8.12.2) through the real DCC: the
transform reads the other device, device logs and HAN backups from the DCC's inventory."""

from __future__ import annotations

import datetime as dt

import pytest

from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.primitives import ecdsa_verify
from smarthydra.dcc.inventory import DeviceRecord, DeviceType, SmiStatus
from smarthydra.dcc.persistent import SqlSmartMeteringInventory
from smarthydra.dcc.signing import DccSigning, DccSigningError, DccSigningKey
from smarthydra.dcc.store import SqlDccStore
from smarthydra.dcc.transform.device import HanBackup
from smarthydra.dcc.transform.joins import join_details, restored_entries
from smarthydra.dcc.transform.restore import (
    DEVICE_LOG_BACKUP_ALERT,
    backup_from_alert,
    restored_backup,
)
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.gbcs.axdr import Data, DataType, array, octet_string, structure
from smarthydra.gbcs.envelope import decode_general_signing, decode_message
from smarthydra.gbcs.rtds import KeyKind, RtdsKeystore, read_hex_file
from smarthydra.gbcs.xdlms import DataNotification
from smarthydra.pki.profile import SmkiRole
from smarthydra.sim.home import GasInstallation, add_gas, enrol_hub
from smarthydra.sim.world import START, World, build_world, in_memory_keystores
from tests.conftest import conformance_path
from tests.dcc.dccboxed_helpers import ESME, boxed
from tests.dcc.test_transform_codecs import certificate

PPMID = Eui64.parse("00-DB-00-00-00-00-50-01")
OLD_HUB = Eui64.parse("00-DB-00-00-00-00-B2-01")
OLD_GPF = Eui64.parse("00-DB-00-00-00-00-B3-01")


@pytest.fixture
def world() -> World:
    # Joins and restores need the published service request matrix (8.7.x, 8.12.x).
    return build_world(1, seed=7, conformance=conformance_path())


@pytest.fixture
def gas(world: World) -> GasInstallation:
    return add_gas(world, world.home(0))


def _ppmid(world: World) -> DeviceRecord:
    """A PPMID in the home (its KA certificate issued by the world's SMKI)."""
    keys = in_memory_keystores(f"ppmid-{PPMID}")
    keys.generate("ka", KeyUsage.KEY_AGREEMENT)
    certificate = world.smki.issue_device(
        subject_public_key=keys.public_key("ka"),
        eui64=PPMID.value,
        usage=KeyUsage.KEY_AGREEMENT,
        not_before=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    home = world.home(0)
    record = DeviceRecord(
        PPMID,
        DeviceType.PPMID,
        home.hub.eui,
        home.mpan,
        certificate.public_key,
        SmiStatus.COMMISSIONED,
        key_agreement_certificate=certificate.der,
    )
    world.dcc.inventory.add_device(record)
    return record


def _request(
    world: World, target: Eui64, srv: str, cv: CommandVariant, body: dict[str, object], role: str
) -> ServiceRequest:
    return ServiceRequest(
        world.supplier.next_request_id(target), world.supplier.eui, role, srv, cv, body
    )


def _payload(wire: bytes | None) -> bytes:
    assert wire is not None
    if wire[:1] == b"\xdf":
        return decode_general_signing(wire).payload
    return decode_message(wire).general_signing.payload


def test_gas_meter_joins_its_gas_proxy_through_the_dcc(world: World, gas: GasInstallation) -> None:
    """8.7.2 CS03B: the GPF's type (3) comes from the DCC's inventory."""
    gsme, gpf = gas.gsme.eui, gas.gpf.eui
    request = _request(
        world, gsme, "8.7.2", CommandVariant.NON_CRITICAL_RETURN_GBCS,
        {"OtherDeviceID": gpf.hyphenated}, "GS",
    )  # fmt: skip
    response = world.dcc.accept(request)
    assert response.code is ResponseCode.SUCCESS, response.detail
    assert join_details(_payload(response.gbcs)) == (2, gpf.value, 3, None)


def test_esme_joins_a_ppmid_pre_command_through_the_dcc(world: World, gas: GasInstallation) -> None:
    """8.7.1 CS03A1 (critical): the pre-command names the PPMID with its type (5)."""
    _ppmid(world)
    esme = world.home(0).esme.eui
    request = _request(
        world, esme, "8.7.1", CommandVariant.CRITICAL_TRANSFORM,
        {"OtherDeviceID": PPMID.hyphenated}, "IS",
    )  # fmt: skip
    response = world.dcc.accept(request)
    assert response.code is ResponseCode.SUCCESS, response.detail
    assert join_details(_payload(response.gbcs)) == (0, PPMID.value, 5, None)


def test_gas_meter_method_c_join_carries_the_ppmid_certificate(
    world: World, gas: GasInstallation
) -> None:
    """8.7.1 CS03C (critical): the PPMID's key-agreement certificate from the inventory."""
    record = _ppmid(world)
    request = _request(
        world, gas.gsme.eui, "8.7.1", CommandVariant.CRITICAL_TRANSFORM,
        {"OtherDeviceID": PPMID.hyphenated}, "GS",
    )  # fmt: skip
    response = world.dcc.accept(request)
    assert response.code is ResponseCode.SUCCESS, response.detail
    assert join_details(_payload(response.gbcs)) == (
        3, PPMID.value, 5, record.key_agreement_certificate,
    )  # fmt: skip


def test_join_with_a_device_not_in_the_inventory_is_refused_e19(
    world: World, gas: GasInstallation
) -> None:
    request = _request(
        world, gas.gsme.eui, "8.7.2", CommandVariant.NON_CRITICAL_RETURN_GBCS,
        {"OtherDeviceID": "00-DB-00-00-00-00-99-99"}, "GS",
    )  # fmt: skip
    assert world.dcc.accept(request).code is ResponseCode.UNKNOWN_DEVICE


def test_join_with_the_wrong_kind_of_device_is_refused(world: World, gas: GasInstallation) -> None:
    request = _request(
        world, gas.gsme.eui, "8.7.2", CommandVariant.NON_CRITICAL_RETURN_GBCS,
        {"OtherDeviceID": world.home(0).esme.eui.hyphenated}, "GS",
    )  # fmt: skip
    response = world.dcc.accept(request)
    assert response.code is ResponseCode.INVALID_REQUEST
    assert "ESME" in response.detail


def test_gpf_device_log_restore_through_the_dcc(world: World, gas: GasInstallation) -> None:
    """8.12.2 GCS59: the old GPF's device log entries (and their types) from the inventory."""
    _ppmid(world)
    gsme = gas.gsme.eui
    world.dcc.inventory.set_device_log(OLD_GPF, (gsme, PPMID))
    gpf = gas.gpf.eui
    request = _request(
        world, gpf, "8.12.2", CommandVariant.NON_CRITICAL_RETURN_GBCS,
        {"OldGPFID": OLD_GPF.hyphenated}, "GS",
    )  # fmt: skip
    response = world.dcc.accept(request)
    assert response.code is ResponseCode.SUCCESS, response.detail
    assert restored_entries(_payload(response.gbcs)) == [(gsme.value, 0), (PPMID.value, 5)]
    # Sent in the DCC's own name.
    assert decode_message(response.gbcs or b"").general_signing.originator == world.dcc.acb.eui.value


def _cs14_alert(backup: HanBackup, counter: int = 1) -> bytes:
    now = bytes(12)
    body = structure(
        Data(DataType.LONG_UNSIGNED, DEVICE_LOG_BACKUP_ALERT),
        octet_string(now),
        structure(
            octet_string(now),
            octet_string(backup.extended_pan_id),
            array(*(structure(octet_string(e), octet_string(k)) for e, k in backup.entries)),
        ),
    )
    return DataNotification(0x20000000 | counter, None, body).encode()


def test_han_device_log_restore_to_a_replacement_hub(world: World, gas: GasInstallation) -> None:
    """8.12.1 CCS03: the old hub's HAN backup, learnt from its CS14 alert, restored on the
    replacement hub the inventory records."""
    home = world.home(0)
    hub = enrol_hub(world, home)
    backup = HanBackup(
        bytes.fromhex("0000000000000140"),
        ((home.esme.eui.value, bytes(range(16))), (gas.gsme.eui.value, bytes(range(16, 32)))),
    )
    assert world.dcc.record_han_backup(OLD_HUB, _cs14_alert(backup)) == backup
    assert world.dcc.inventory.device_log(OLD_HUB) == (home.esme.eui, gas.gsme.eui)
    request = _request(
        world, hub.eui, "8.12.1", CommandVariant.NON_CRITICAL_RETURN_GBCS,
        {"OldCHFID": OLD_HUB.hyphenated}, "IS",
    )  # fmt: skip
    response = world.dcc.accept(request)
    assert response.code is ResponseCode.SUCCESS, response.detail
    message = decode_message(response.gbcs or b"").general_signing
    assert restored_backup(message.payload) == backup
    # Sent by the DCC, the supplier riding as the supplementary remote party.
    assert message.originator == world.dcc.acb.eui.value
    assert message.other_information.supplementary_remote_party_id == world.supplier.eui.value


def test_han_restore_without_a_backup_is_refused_e19(world: World) -> None:
    hub = enrol_hub(world, world.home(0))
    request = _request(
        world, hub.eui, "8.12.1", CommandVariant.NON_CRITICAL_RETURN_GBCS,
        {"OldCHFID": OLD_HUB.hyphenated}, "IS",
    )  # fmt: skip
    assert world.dcc.accept(request).code is ResponseCode.UNKNOWN_DEVICE


def test_backups_and_device_logs_survive_a_restart(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/dcc.db"
    store = SqlDccStore(url)
    inventory = SqlSmartMeteringInventory(store)
    backup = HanBackup(bytes(8), ((bytes(range(8)), bytes(16)),))
    inventory.record_han_backup(OLD_HUB, backup)
    inventory.set_device_log(OLD_GPF, (OLD_HUB, PPMID))
    inventory.set_device_log(OLD_GPF, (PPMID,))
    again = SqlSmartMeteringInventory(SqlDccStore(url))
    assert again.han_backup(OLD_HUB) == backup
    assert again.device_log(OLD_GPF) == (PPMID,)


def test_rtds_cs14_alert_holds_the_entries_ccs03_restores() -> None:
    """The RTDS hub's backup alert and its CCS03 restore carry the same device log."""
    alert = read_hex_file(conformance_path("gbcs", "rtds-4.5.0", "NA_CS14", "CS14_NA_8F12_ALERT_GBCS.HEX"))
    command = read_hex_file(
        conformance_path("gbcs", "rtds-4.5.0", "8.12.1_CCS03", "CCS03_8.12.1_SUCCESS_COMMAND_GBCS.HEX")
    )
    from_alert = backup_from_alert(decode_message(alert).general_signing.payload)
    restored = restored_backup(decode_message(command).general_signing.payload)
    assert from_alert.entries == restored.entries



# --- commands the DCC signs itself -------------------------------------------------------------

TRANS_COS = Eui64.parse("90-B3-D5-1F-30-00-00-04")


def _signing_key(world: World, eui: Eui64, role: SmkiRole) -> DccSigningKey:
    keys = in_memory_keystores(f"dcc-ds-{eui}")
    keys.generate("ds", KeyUsage.DIGITAL_SIGNATURE)
    organisation = world.smki.issue_organisation(
        subject_public_key=keys.public_key("ds"),
        role=int(role),
        eui64=eui.value,
        usage=KeyUsage.DIGITAL_SIGNATURE,
        not_before=START,
        not_after=START + dt.timedelta(days=3650),
    )
    return DccSigningKey(eui, keys, "ds", organisation.der)


def _change_of_supplier(world: World) -> ServiceRequest:
    body: dict[str, object] = {
        "SupplierFloorSeqNumber": "0",
        "SupplierPrepaymentTopUpFloorSeqNumber": "0",
        "SupplierReplacementCertificates": {"DigitalSigningCertificate": certificate()},
        "CertificationPathCertificates": {"Certificate": [certificate("ca"), certificate("i")]},
        "ApplyTimeBasedCPVChecks": "false",
        "ImportMPxN": world.home(0).mpan,
    }
    esme = world.home(0).esme.eui
    return _request(world, esme, "6.23", CommandVariant.NON_CRITICAL_RETURN_GBCS, body, "IS")


def test_change_of_supplier_is_signed_by_the_dcc_as_transitional_cos(world: World) -> None:
    """6.23 with no SMKI hook: CS02b sent from, and signed by, the transitional CoS party."""
    key = _signing_key(world, TRANS_COS, SmkiRole.TRANSITIONAL_COS)
    world.dcc.dcc_signing = DccSigning(by_use_case={"CS02bSupplierByTransCoS": key})
    response = world.dcc.accept(_change_of_supplier(world))
    assert response.code is ResponseCode.SUCCESS, response.detail
    command = decode_message(response.gbcs or b"").general_signing
    assert command.originator == TRANS_COS.value
    assert command.signature is not None
    public = key.keystore.public_key("ds")
    assert ecdsa_verify(public, command.signed_data(), command.signature)


def test_a_dcc_signed_command_without_a_dcc_key_is_refused(world: World) -> None:
    world.dcc.dcc_signing = DccSigning()
    response = world.dcc.accept(_change_of_supplier(world))
    assert response.code is ResponseCode.INVALID_REQUEST
    assert "signing key" in response.detail


def test_a_dcc_signing_key_must_match_its_certificate(world: World) -> None:
    key = _signing_key(world, TRANS_COS, SmkiRole.TRANSITIONAL_COS)
    other = _signing_key(world, TRANS_COS, SmkiRole.TRANSITIONAL_COS)
    with pytest.raises(DccSigningError):
        DccSigningKey(TRANS_COS, key.keystore, "ds", other.certificate)


def test_dccboxed_profile_signs_change_of_supplier_as_the_rtds_transitional_cos() -> None:
    """The dccboxed profile signs with the RTDS keystore's keys: CS02b by transCoS from
    90-B3-D5-1F-30-00-00-04, verified with that party's RTDS public key."""
    rtds = RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))
    dcc = boxed().profile.dcc
    assert dcc.dcc_signing.default is not None
    assert dcc.dcc_signing.default.eui == dcc.acb.eui
    body: dict[str, object] = {
        "SupplierFloorSeqNumber": "0",
        "SupplierPrepaymentTopUpFloorSeqNumber": "0",
        "SupplierReplacementCertificates": {"DigitalSigningCertificate": certificate()},
        "CertificationPathCertificates": {"Certificate": [certificate("ca")]},
        "ApplyTimeBasedCPVChecks": "true",
        "ImportMPxN": "1234567890",
    }
    supplier = Eui64.parse("90-B3-D5-1F-30-01-00-00")
    request = ServiceRequest(
        RequestId(supplier, ESME, 5_000), supplier, "IS", "6.23",
        CommandVariant.NON_CRITICAL_RETURN_GBCS, body,
    )  # fmt: skip
    response = dcc.accept(request)
    assert response.code is ResponseCode.SUCCESS, response.detail
    command = decode_message(response.gbcs or b"").general_signing
    assert command.originator == TRANS_COS.value and command.signature is not None
    public = rtds.parties[TRANS_COS.value].public[KeyKind.DS]
    assert ecdsa_verify(public, command.signed_data(), command.signature)

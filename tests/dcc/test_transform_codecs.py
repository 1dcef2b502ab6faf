"""The transform mechanisms added for the remaining device SRVs (no conformance data needed):
DER payloads built in code (CS06, CS02b), GBZ fields by component, trailing ZCL strings,
optional request specifications, indexed DUIS repeats, packed script ids, decimals."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.dcc.transform import (
    MAPPINGS,
    DccOriginator,
    DeviceType,
    Target,
    TransformError,
    transform,
)
from smarthydra.dcc.transform.alerts import (
    HALF,
    SUPPLIER_GROUPS,
    AlertFilter,
    GasAlertConfiguration,
)
from smarthydra.dcc.transform.codecs import (
    ChangeOfSupplierCredentialsUpdate,
    CredentialsUpdate,
    FirmwareActivation,
)
from smarthydra.dcc.transform.device import Inventory, InventoryDevice
from smarthydra.dcc.transform.gas import components
from smarthydra.dcc.transform.joins import join_details, restored_entries
from smarthydra.dcc.transform.payload import (
    byte_ranges,
    decode_access_request,
    get_leaf,
    read_strings,
    write_strings,
)
from smarthydra.dcc.transform.spec import CANCELLATION_DATETIME
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.gbcs.gbz import decode_gbz
from smarthydra.pki.credentials import CellUsage, CredentialsReplacementMode, decode_command

SUPPLIER = Eui64.parse("90B3D51F30010000")
ESME = Target(DeviceType.ESME)
GSME = Target(DeviceType.GSME)
DCC = DccOriginator(bytes.fromhex("90B3D51F30000004"), 6001)
ISSUED = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
CRITICAL = CommandVariant.CRITICAL_TRANSFORM
NON_CRITICAL = CommandVariant.NON_CRITICAL_TO_DEVICE
HASH = "AA" * 32


def request(
    variant: str,
    body: dict[str, object],
    *,
    cv: CommandVariant = NON_CRITICAL,
    execution: dt.datetime | None = None,
    counter: int = 1000,
    target: str = "00DB1234567890A0",
) -> ServiceRequest:
    rid = RequestId(SUPPLIER, Eui64.parse(target), counter)
    return ServiceRequest(rid, SUPPLIER, "IS", variant, cv, body, execution)


def certificate(name: str = "supplier") -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    built = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2015, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2035, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(built.public_bytes(Encoding.DER)).decode("ascii")


# --- CS06 -------------------------------------------------------------------------------------


def test_firmware_activation_carries_hash_counter_and_execution() -> None:
    codec = FirmwareActivation()
    now = codec.build({"FirmwareHash": HASH}, None, 1000)
    assert now == bytes.fromhex("3026" + "0420" + HASH + "020203e8")
    when = dt.datetime(2030, 1, 15, 9, tzinfo=dt.UTC)
    future = codec.build({"FirmwareHash": HASH}, when, 1001)
    assert future.endswith(b"\x18\x0f20300115090000Z")
    cancel = codec.build({"FirmwareHash": HASH}, CANCELLATION_DATETIME, 1002)
    assert cancel.endswith(b"99991231235959Z")
    for payload, execution in ((now, None), (future, when), (cancel, CANCELLATION_DATETIME)):
        assert codec.parse(payload) == ({"FirmwareHash": HASH}, execution)


@pytest.mark.parametrize("digest", ["AA" * 31, "not hex", ""])
def test_firmware_activation_refuses_a_bad_hash(digest: str) -> None:
    with pytest.raises(TransformError) as raised:
        transform(request("11.3", {"FirmwareHash": digest}, cv=CRITICAL), ESME)
    assert raised.value.code is ResponseCode.INVALID_REQUEST


def test_firmware_activation_is_a_critical_precommand() -> None:
    result = transform(request("11.3", {"FirmwareHash": HASH}, cv=CRITICAL), ESME)
    assert result.critical and result.use_case == "CS06"
    assert result.general_signing.signature is None
    with pytest.raises(TransformError) as raised:
        transform(request("11.3", {"FirmwareHash": HASH}), ESME)
    assert raised.value.code is ResponseCode.INVALID_COMMAND_VARIANT


# --- CS02b ------------------------------------------------------------------------------------


def krp_body(role: str = "Supplier", **certificates: str) -> dict[str, object]:
    return {
        "RemotePartyRole": role,
        "RemotePartyFloorSeqNumber": "0",
        "ReplacementCertificates": {"SupplierOrNetworkOperatorCertificates": certificates},
        "CertificationPathCertificates": {"Certificate": certificate("ca")},
        "ApplyTimeBasedCPVChecks": "true",
    }


def test_krp_update_names_the_requesters_cells() -> None:
    body = krp_body(DigitalSigningCertificate=certificate(), KeyAgreementCertificate=certificate())
    result = transform(request("6.15.1", body, cv=CRITICAL), ESME)
    assert result.use_case == "CS02bSupplierBySupplier"
    update = decode_command(result.general_signing.payload)
    assert update.control.mode is CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER
    assert update.control.seq_number == 1000
    assert update.control.apply_time_based_checks is None  # the device default: apply
    assert [r.target.role for r in update.replacements] == [2, 2]
    assert CredentialsUpdate(wrapped=True).parse(result.general_signing.payload)[0] == body


def test_krp_top_up_certificate_goes_to_the_top_up_cell() -> None:
    body = krp_body(KeyAgreementTopUpCertificate=certificate())
    update = decode_command(
        transform(request("6.15.1", body, cv=CRITICAL), ESME).general_signing.payload
    )
    assert update.replacements[0].target.cell_usage is CellUsage.PREPAYMENT_TOP_UP


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (krp_body(), "no replacement certificates"),
        (krp_body("Root", DigitalSigningCertificate=certificate()), "not supported"),
        (krp_body(DigitalSigningCertificate="not base64!"), "base64"),
        (krp_body(DigitalSigningCertificate="AAAA"), "CS02b"),
        (
            {**krp_body(DigitalSigningCertificate=certificate()), "ApplyTimeBasedCPVChecks": "x"},
            "boolean",
        ),
    ],
)
def test_krp_update_refuses_bad_bodies(body: dict[str, object], message: str) -> None:
    with pytest.raises(TransformError, match=message) as raised:
        transform(request("6.15.1", body, cv=CRITICAL), ESME)
    assert raised.value.code is ResponseCode.INVALID_REQUEST


def test_change_of_supplier_is_sent_by_the_dcc_as_transitional_cos() -> None:
    body: dict[str, object] = {
        "SupplierFloorSeqNumber": "0",
        "SupplierPrepaymentTopUpFloorSeqNumber": "0",
        "SupplierReplacementCertificates": {"DigitalSigningCertificate": certificate()},
        "CertificationPathCertificates": {"Certificate": [certificate("ca"), certificate("i")]},
        "ApplyTimeBasedCPVChecks": "false",
        "ImportMPxN": "1234567890",
    }
    with pytest.raises(TransformError, match="sent by the DCC"):
        transform(request("6.23", body), ESME)
    result = transform(request("6.23", body), ESME, dcc=DCC)
    gs = result.general_signing
    assert gs.originator == DCC.eui and gs.originator_counter == DCC.counter
    assert result.dcc_signed and not result.critical
    update = decode_command(gs.payload)
    assert update.control.mode is CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS
    assert update.control.seq_number == DCC.counter
    assert update.control.apply_time_based_checks is False
    assert len(update.path) == 2
    parsed, _ = ChangeOfSupplierCredentialsUpdate().parse(gs.payload)
    assert parsed == {k: v for k, v in body.items() if k != "ImportMPxN"}


# --- GBZ fields -------------------------------------------------------------------------------

PERIOD = {"StartDateTime": "2015-01-01T00:00:00Z", "EndDateTime": "2015-01-03T00:00:00Z"}


def test_gas_sampled_data_counts_the_half_hours() -> None:
    result = transform(request("4.8.1", {"ReadLogPeriod": PERIOD}), GSME)
    payload = result.general_signing.payload
    ((offset, _),) = byte_ranges(payload, ("zcl", 0, 7, 2))
    assert int.from_bytes(payload[offset : offset + 2], "little") == 97
    backwards = {"StartDateTime": PERIOD["EndDateTime"], "EndDateTime": PERIOD["StartDateTime"]}
    with pytest.raises(TransformError, match="after"):
        transform(request("4.8.1", {"ReadLogPeriod": backwards}), GSME)


def test_gas_snapshot_log_writes_every_component() -> None:
    payload = transform(request("4.4.2", {"ReadLogPeriod": PERIOD}), GSME).general_signing.payload
    starts = byte_ranges(payload, ("zcl", -1, 0, 4))
    assert len(starts) == len(decode_gbz(payload).components) > 1
    assert {payload[o : o + n] for o, n in starts} == {(473385600).to_bytes(4, "little")}


def test_gas_message_string_resizes_its_component() -> None:
    text = "Please call us about your account"
    result = transform(request("3.1", {"SupplierMessage": text}), GSME, issued_at=ISSUED)
    payload = result.general_signing.payload
    decoded = decode_gbz(payload)  # the component length was fixed up
    assert decoded.encode() == payload
    assert read_strings(payload, 0, 11) == [text.encode()]
    with pytest.raises(TransformError, match="ASCII"):
        transform(request("3.1", {"SupplierMessage": "café"}), GSME, issued_at=ISSUED)


def test_zcl_strings_round_trip() -> None:
    payload = bytes.fromhex("0109010107030009090000aabb02414200")
    assert read_strings(payload, 0, 2) == [b"AB", b""]
    rewritten = write_strings(payload, 0, 2, [b"hello", b""])
    assert read_strings(rewritten, 0, 2) == [b"hello", b""]
    assert decode_gbz(rewritten).encode() == rewritten


def test_gas_conversion_decimals() -> None:
    body: dict[str, object] = {"CalorificValue": "40.0", "ConversionFactor": "1.02264"}
    payload = transform(
        request("6.6", body, cv=CRITICAL), GSME, issued_at=ISSUED
    ).general_signing.payload
    ((offset, _),) = byte_ranges(payload, ("zcl", 0, 8, 4))
    assert int.from_bytes(payload[offset : offset + 4], "little") == 102264
    bad_bodies: list[dict[str, object]] = [
        {**body, "CalorificValue": "40.05"},
        {**body, "ConversionFactor": "x"},
    ]
    for bad in bad_bodies:
        with pytest.raises(TransformError):
            transform(request("6.6", bad, cv=CRITICAL), GSME, issued_at=ISSUED)


# --- xDLMS mechanisms -------------------------------------------------------------------------


def test_optional_registers_are_reset_only_when_named() -> None:
    one = transform(request("6.18.2", {"MaxDemandActivePowerExportValue": {}}), ESME)
    apdu = decode_access_request(one.general_signing.payload)
    assert [s.descriptor.instance_id for s in apdu.specifications] == [bytes([1, 0, 2, 6, 0, 255])]
    assert len(apdu.data) == 1
    with pytest.raises(TransformError, match="nothing"):
        transform(request("6.18.2", {}), ESME)


def test_boost_button_repeats_are_picked_by_index() -> None:
    body: dict[str, object] = {
        "AddToBoostButton": [
            {"@index": str(i), "#text": "true" if i == 2 else "false"} for i in range(1, 6)
        ]
    }
    apdu = decode_access_request(transform(request("7.9", body), ESME).general_signing.payload)
    assert [s.descriptor.instance_id[-1] for s in apdu.specifications] == [2]


def test_auxiliary_controller_script_and_objects() -> None:
    body: dict[str, object] = {
        "@auxiliaryControllerN": "3",
        "StartDateTime": "2015-01-03T00:00:00Z",
        "EndDateTime": "2015-01-03T01:00:00Z",
        "CommandedStateLevel": "50",
        "InputFromControlledLoad": {},
    }
    apdu = decode_access_request(
        transform(request("7.13", body, cv=CRITICAL), ESME).general_signing.payload
    )
    assert apdu.specifications[0].descriptor.instance_id[4] == 119
    assert apdu.data[2].value == 0x2332
    with pytest.raises(TransformError):
        transform(request("7.13", {**body, "@auxiliaryControllerN": "300"}, cv=CRITICAL), ESME)


def test_maximum_demand_period_times() -> None:
    body: dict[str, object] = {
        "MaximumDemandTimePeriodSchedule": {"StartTime": "17:00:00", "EndTime": "22:00:00Z"}
    }
    apdu = decode_access_request(transform(request("6.18.1", body), ESME).general_signing.payload)
    assert get_leaf(apdu, ("data", 0, 0, 4)).value == bytes([17, 0, 0, 0])
    bad: dict[str, object] = {
        "MaximumDemandTimePeriodSchedule": {"StartTime": "5pm", "EndTime": "22:00:00"}
    }
    with pytest.raises(TransformError, match="xs:time"):
        transform(request("6.18.1", bad), ESME)


def test_voltage_choice_follows_phases_and_counter_reset() -> None:
    settings_ = {
        f"{name}{kind}": "30"
        for name in ("RMSExtremeOverVoltage", "RMSExtremeUnderVoltage", "RMSVoltageSag")
        for kind in ("MeasurementPeriod", "Threshold")
    } | {"RMSVoltageSwellMeasurementPeriod": "30", "RMSVoltageSwellThreshold": "253"}
    average = {
        "AverageRMSOverVoltageThreshold": "264",
        "AverageRMSUnderVoltageThreshold": "200",
        "AverageRMSVoltageMeasurementPeriod": "30",
    }
    single: dict[str, object] = {
        "RMSVoltageSettings": settings_,
        "SinglePhaseVoltageSettings": average,
    }
    assert transform(request("6.5", single), ESME).use_case == "ECS29a"
    kept = {**single, "RMSVoltageCountersNotReset": {}}
    assert transform(request("6.5", kept), ESME).use_case == "ECS29c"
    phases: list[object] = [{"Phase": str(n), "PhaseVoltageSettings": average} for n in (1, 2, 3)]
    poly: dict[str, object] = {"RMSVoltageSettings": settings_, "PolyPhaseVoltageSettings": phases}
    assert transform(request("6.5", poly), ESME).use_case == "ECS29b"
    missing_phase = {**poly, "PolyPhaseVoltageSettings": phases[:2]}
    with pytest.raises(TransformError, match="missing"):
        transform(request("6.5", missing_phase), ESME)


def test_legacy_devices_get_the_earlier_use_case() -> None:
    legacy = Target(DeviceType.ESME, legacy=True)
    assert transform(request("6.2.3", {}), legacy).use_case == "ECS26d"
    assert transform(request("6.2.3", {}), ESME).use_case == "ECS26l"


# --- robustness -------------------------------------------------------------------------------

NEW_VARIANTS = sorted(
    {"2.3", "3.1", "3.2", "3.4", "4.4.2", "4.4.4", "4.8.1", "4.17", "6.5", "6.6", "6.7", "6.8"}
    | {"6.15.1", "6.18.1", "6.18.2", "6.20.1", "6.21", "6.23", "7.9", "7.13", "8.5", "11.3"}
    | {"1.1.1", "1.1.2", "1.2.1", "1.2.2", "1.6", "2.1", "6.14.1", "6.14.2", "6.14.3"}
    | {"6.24.1", "6.28"}
)
_leaf = st.one_of(
    st.text(max_size=12),
    st.integers(-(1 << 70), 1 << 70).map(str),
    st.sampled_from(["true", "Supplier", "Monthly", "2015-01-01T00:00:00Z", HASH, "AAAA"]),
)
_node: st.SearchStrategy[object] = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "DigitalSigningCertificate",
                    "SupplierOrNetworkOperatorCertificates",
                    "Certificate",
                    "StartDateTime",
                    "EndDateTime",
                    "@index",
                    "#text",
                    "Phase",
                    "PhaseVoltageSettings",
                    "SwitchingTable",
                    "DayProfile",
                    "ProfileSchedule",
                    "TOUPrice",
                    "GasPriceElements",
                    "ElectricityPriceElements",
                    "TOUTariff",
                    "BlockTariff",
                    "SpecialDay",
                    "Date",
                    "Channel1",
                ]
            ),
            children,
            max_size=3,
        ),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    variant=st.sampled_from(NEW_VARIANTS),
    device=st.sampled_from([DeviceType.ESME, DeviceType.GSME, DeviceType.GPF, DeviceType.CHF]),
    body=st.dictionaries(
        st.sampled_from(
            [
                "FirmwareHash",
                "RemotePartyRole",
                "ReplacementCertificates",
                "CertificationPathCertificates",
                "ApplyTimeBasedCPVChecks",
                "SupplierMessage",
                "ReadLogPeriod",
                "RMSVoltageSettings",
                "PolyPhaseVoltageSettings",
                "AddToBoostButton",
                "@auxiliaryControllerN",
                "CommandedStateLevel",
                "GasBillingCalendar",
                "CalorificValue",
                "ConversionFactor",
                "TimeDebtRegister1",
                "PriceElements",
                "GasTariffElements",
                "ElecTariffElements",
                "Prepayment",
                "UpdatePrepayConfigElectricity",
                "UpdatePrepayConfigGas",
                "ElectricityBillingCalendar",
                "AuxiliaryControllerSchedule",
                "ALCSHCALCSConnectionSchedule",
                "SwitchTypeAndId",
                "LowerBandSubGHzChannels0To26",
            ]
        ),
        _node,
        max_size=5,
    ),
    execution=st.sampled_from(
        [None, CANCELLATION_DATETIME, dt.datetime(2030, 1, 1, tzinfo=dt.UTC)]
    ),
)
def test_fuzz_new_transforms_refuse_but_never_crash(
    variant: str,
    device: DeviceType,
    body: dict[str, object],
    execution: dt.datetime | None,
) -> None:
    assert variant in MAPPINGS
    try:
        result = transform(
            request(variant, body, execution=execution),
            Target(device),
            check_variant=False,
            dcc=DCC,
            issued_at=ISSUED,
        )
    except TransformError as exc:
        assert isinstance(exc.code, ResponseCode)
    else:
        assert result.general_signing.wire()


# --- CS02g: the supplier replaces the load controller's cells (mode 11) -----------------------


def test_load_controller_mode_and_message_codes() -> None:
    mode = CredentialsReplacementMode
    assert mode.LOAD_CONTROLLER_BY_SUPPLIER.message_code == 0x0126
    assert mode.LOAD_CONTROLLER_BY_LOAD_CONTROLLER.message_code == 0x0125
    assert mode.SUPPLIER_BY_SUPPLIER.message_code == 0x0102
    # CS02b message codes only: the device side does not handle CS02g
    assert mode.for_message_code(0x0126) is None


def test_load_controller_cells_are_replaced_by_the_supplier() -> None:
    body = krp_body(
        "LoadController",
        DigitalSigningCertificate=certificate(),
        KeyAgreementCertificate=certificate(),
    )
    body["RemotePartyFloorSeqNumber"] = "7"
    result = transform(request("6.15.1", body, cv=CRITICAL), ESME)
    assert result.use_case == "CS02gLoadControllerBySupplier" and result.critical
    assert result.general_signing.message_code == 0x0126
    update = decode_command(result.general_signing.payload)
    control = update.control
    assert control.mode is CredentialsReplacementMode.LOAD_CONTROLLER_BY_SUPPLIER
    assert control.authorising_cell is not None and control.authorising_cell.role == 2
    assert control.new_floor is None  # the supplier's own floor is untouched
    assert [(c.role, c.floor) for c in control.other_changes] == [(8, 7)]
    assert [r.target.role for r in update.replacements] == [8, 8]
    assert CredentialsUpdate(wrapped=True).parse(result.general_signing.payload)[0] == body


def test_load_controller_update_is_for_the_esme_only() -> None:
    body = krp_body("LoadController", DigitalSigningCertificate=certificate())
    with pytest.raises(TransformError):
        transform(request("6.15.1", body, cv=CRITICAL, target="00DB1234567890A1"), GSME)


# --- 6.22 alert behaviour -----------------------------------------------------------------------


def test_esme_alert_filter_halves() -> None:

    body = {
        "ElectricitySupplierAlerts": {
            "SupplierESMECommon": {"x810D": "Enable", "x81C4": "Disable"},
            "SupplierESMEPolyPhase": {"x81B7": "Enable"},
        }
    }
    result = transform(request("6.22", body), ESME)
    assert result.use_case == "ECS25a"
    leaf = decode_access_request(result.general_signing.payload).data[0].value
    changed = int.from_bytes(leaf.data[: HALF // 8], "big")
    enabled = int.from_bytes(leaf.data[HALF // 8 :], "big")
    assert changed == (1 << 0x0D) | (1 << 0xC4) | (1 << 0xB7)
    assert enabled == (1 << 0x0D) | (1 << 0xB7)
    codec = AlertFilter("ElectricitySupplierAlerts", SUPPLIER_GROUPS)
    parsed = codec.parse(decode_access_request(result.general_signing.payload).data[0])
    assert parsed == {
        "ElectricitySupplierAlerts/SupplierESMECommon/x810D": "Enable",
        "ElectricitySupplierAlerts/SupplierESMECommon/x81C4": "Disable",
        "ElectricitySupplierAlerts/SupplierESMEPolyPhase/x81B7": "Enable",
    }


@pytest.mark.parametrize(
    ("body", "use_case"),
    [
        (
            {"ElectricitySupplierLoggingSettings": {"SupplierESMECommon": {"x8145": "Enable"}}},
            "ECS25a3",
        ),
        (
            {
                "ElectricityNetworkOperatorAlerts": {
                    "NetworkOperatorESMECommon": {"x8014": "Enable"}
                }
            },
            "ECS25b",
        ),
    ],
)
def test_alert_setting_kind_picks_the_use_case(body: dict[str, object], use_case: str) -> None:
    assert transform(request("6.22", body), ESME).use_case == use_case


@pytest.mark.parametrize(
    "body",
    [
        {"ElectricitySupplierAlerts": {"SupplierESMECommon": {"x8014": "Enable"}}},  # an NO alert
        {"ElectricitySupplierAlerts": {"SupplierESMECommon": {"x810D": "On"}}},
        {"ElectricitySupplierAlerts": {}},
        {"GasSupplierAlerts": {"x810D": "Enable"}},  # no logging/HAN/alarm settings: refused
    ],
)
def test_bad_alert_settings_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(TransformError):
        transform(request("6.22", body), ESME)


def test_gas_alert_configuration_groups_by_configuration() -> None:
    every = {"WANAlert": "Enable", "HANAlert": "Enable", "EventLog": "Enable", "Alarm": "Enable"}
    wan = {"WANAlert": "Enable", "HANAlert": "Disable", "EventLog": "Disable", "Alarm": "Disable"}
    body: dict[str, object] = {
        "GasSupplierAlertEventSettings": {"x81AA": every, "x810E": wan, "x81C4": every}
    }
    result = transform(request("6.22", body, target="00DB1234567890A1"), GSME, issued_at=ISSUED)
    assert result.use_case == "GCS20"
    payload = result.general_signing.payload
    gbz = decode_gbz(payload)
    assert len(gbz.components) == 2
    # schema order of the first alert of each configuration: 810E (WAN only) first
    assert [zcl[8] for zcl in components(payload)] == [0x08, 0x5B]
    parsed, _ = GasAlertConfiguration().parse(payload)
    assert parsed == {
        "GasSupplierAlertEventSettings": {"x810E": wan, "x81AA": every, "x81C4": every}
    }


# --- 8.7 joins and 8.12.2 device log restore (the inventory supplies the other device) --------


def _inventory() -> Inventory:
    return Inventory(
        {
            bytes.fromhex("00DB123456789093"): InventoryDevice(DeviceType.ESME),
            bytes.fromhex("00DB123456789094"): InventoryDevice(
                DeviceType.GSME, base64.b64decode(certificate("gsme"))
            ),
            bytes.fromhex("00DB123456789095"): InventoryDevice(DeviceType.GSME),
            bytes.fromhex("00DB12345678909C"): InventoryDevice(DeviceType.GPF),
        },
        {bytes.fromhex("00DB1234567890B3"): (bytes.fromhex("00DB123456789093"),)},
    )


def test_join_carries_the_inventory_type_and_certificate() -> None:
    inventory = _inventory()
    ppmid = Target(DeviceType.PPMID)
    gs = transform(
        request("8.7.2", {"OtherDeviceID": "00-DB-12-34-56-78-90-93"}, target="00DB1234567890A4"),
        ppmid,
        dcc=DCC,
        inventory=inventory,
    )
    assert gs.use_case == "CS03A2NonCritical"
    assert join_details(gs.general_signing.payload) == (
        1,
        bytes.fromhex("00DB123456789093"),
        1,
        None,
    )
    gs = transform(
        request("8.7.2", {"OtherDeviceID": "00-DB-12-34-56-78-90-94"}, target="00DB1234567890A4"),
        ppmid,
        dcc=DCC,
        inventory=inventory,
    )
    method, _, kind, cert = join_details(gs.general_signing.payload)
    assert gs.use_case == "CS03CNonCritical" and (method, kind) == (3, 0)
    assert cert == inventory.devices[bytes.fromhex("00DB123456789094")].key_agreement_certificate


@pytest.mark.parametrize(
    ("variant", "other", "target", "code"),
    [
        ("8.7.2", "00-DB-12-34-56-78-90-99", Target(DeviceType.GSME), ResponseCode.UNKNOWN_DEVICE),
        ("8.7.2", "00-DB-12-34-56-78-90-93", Target(DeviceType.GSME), ResponseCode.INVALID_REQUEST),
        (
            "8.7.2",
            "00-DB-12-34-56-78-90-95",
            Target(DeviceType.PPMID),
            ResponseCode.INVALID_REQUEST,
        ),
        ("8.7.1", "00-DB-12-34-56-78-90-9C", Target(DeviceType.ESME), ResponseCode.INVALID_REQUEST),
        ("8.7.1", "not an EUI", Target(DeviceType.ESME), ResponseCode.INVALID_REQUEST),
    ],
)
def test_joins_the_inventory_cannot_back_are_refused(
    variant: str, other: str, target: Target, code: ResponseCode
) -> None:
    inventory = _inventory()
    cv = CRITICAL if variant == "8.7.1" else NON_CRITICAL
    with pytest.raises(TransformError) as raised:
        transform(
            request(variant, {"OtherDeviceID": other}, cv=cv), target, dcc=DCC, inventory=inventory
        )
    assert raised.value.code is code


def test_gpf_device_log_restore_sends_the_old_log() -> None:
    inventory = _inventory()
    gpf = Target(DeviceType.GPF)
    result = transform(
        request("8.12.2", {"OldGPFID": "00-DB-12-34-56-78-90-B3"}, target="00DB1234567890A3"),
        gpf,
        dcc=DCC,
        inventory=inventory,
    )
    assert result.use_case == "GCS59"
    assert result.general_signing.originator == DCC.eui
    assert restored_entries(result.general_signing.payload) == [
        (bytes.fromhex("00DB123456789093"), 1)
    ]
    with pytest.raises(TransformError) as raised:
        transform(
            request("8.12.2", {"OldGPFID": "00-DB-12-34-56-78-90-B4"}, target="00DB1234567890A3"),
            gpf,
            dcc=DCC,
            inventory=inventory,
        )
    assert raised.value.code is ResponseCode.UNKNOWN_DEVICE

"""Unit tests of the transform engine (no conformance data needed: templates ship with it)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.dcc.transform import (
    MAPPINGS,
    DccOriginator,
    DeviceType,
    EsmeVariant,
    Target,
    TransformError,
    supported_variants,
    to_general_signing,
    transform,
)
from smarthydra.dcc.transform.payload import decode_access_request, get_leaf, load_templates
from smarthydra.dcc.transform.spec import (
    CANCELLATION_DATETIME,
    Choice,
    Conversion,
    UseCaseSpec,
    from_leaf,
    to_leaf,
)
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.gbcs.axdr import Data, DataType
from smarthydra.gbcs.envelope import decode_general_signing

SUPPLIER = Eui64.parse("90B3D51F30010000")
ESME = Eui64.parse("00DB1234567890A0")
ESME_TARGET = Target(DeviceType.ESME)
DCC = DccOriginator(bytes.fromhex("90B3D51F30000002"), 5000)


def request(
    variant: str,
    parameters: dict[str, object] | None = None,
    *,
    counter: int = 1000,
    cv: CommandVariant = CommandVariant.NON_CRITICAL_TO_DEVICE,
    execution: dt.datetime | None = None,
    role: str = "IS",
) -> ServiceRequest:
    rid = RequestId(SUPPLIER, ESME, counter)
    return ServiceRequest(rid, SUPPLIER, role, variant, cv, parameters or {}, execution)


def test_every_mapped_use_case_has_a_template() -> None:
    templates = load_templates()

    def use_cases(mapping: UseCaseSpec | Choice) -> list[str]:
        if isinstance(mapping, UseCaseSpec):
            return [mapping.template_key]
        return [u for option in mapping.options.values() for u in use_cases(option)]

    missing = {
        u
        for by_device in MAPPINGS.values()
        for mapping in by_device.values()
        for u in use_cases(mapping)
        if u not in templates
    }
    assert missing == set()


def test_counter_becomes_originator_counter_and_invoke_id() -> None:
    result = transform(request("4.1.1", counter=0x12345678), ESME_TARGET)
    gs = result.general_signing
    assert gs.originator_counter == 0x12345678
    assert gs.originator == SUPPLIER.value and gs.recipient == ESME.value
    apdu = decode_access_request(gs.payload)
    assert apdu.invoke_id & 0xFFFFFF == 0x345678
    # The protected read repeats the header inside the payload.
    assert SUPPLIER.value in gs.payload and ESME.value in gs.payload
    assert (0x12345678).to_bytes(8, "big") in gs.payload


def test_transform_is_deterministic() -> None:
    first = transform(request("4.1.1"), ESME_TARGET).general_signing.encode()
    second = transform(request("4.1.1"), ESME_TARGET).general_signing.encode()
    assert first == second
    assert transform(request("4.1.1", counter=1001), ESME_TARGET).general_signing.encode() != first


def test_critical_request_gives_a_precommand_without_signature_field() -> None:
    result = transform(request("7.2", cv=CommandVariant.CRITICAL_TRANSFORM), ESME_TARGET)
    assert result.critical and result.use_case == "ECS43"
    assert result.general_signing.signature is None
    decoded = decode_general_signing(result.general_signing.wire())
    assert decoded.signature is None


@pytest.mark.parametrize(
    ("variant", "cv"),
    [
        ("7.2", CommandVariant.NON_CRITICAL_TO_DEVICE),
        ("4.1.1", CommandVariant.CRITICAL_TRANSFORM),
        ("4.1.1", CommandVariant.NON_DEVICE),
    ],
)
def test_wrong_command_variant_is_e12(variant: str, cv: CommandVariant) -> None:
    with pytest.raises(TransformError) as raised:
        transform(request(variant, cv=cv), ESME_TARGET)
    assert raised.value.code is ResponseCode.INVALID_COMMAND_VARIANT


def test_unknown_variant_and_inapplicable_device_are_refused() -> None:
    with pytest.raises(TransformError) as raised:
        transform(request("99.9"), ESME_TARGET)
    assert raised.value.code is ResponseCode.INVALID_REQUEST
    with pytest.raises(TransformError, match="does not apply"):
        transform(request("7.1", cv=CommandVariant.CRITICAL_TRANSFORM), Target(DeviceType.GSME))


def test_log_read_period_fills_the_selection() -> None:
    body = {
        "ReadLogPeriod": {
            "StartDateTime": "2020-01-01T00:00:00Z",
            "EndDateTime": "2020-01-02T00:00:00Z",
        },
        "LogToRead": "Security",
    }
    result = transform(request("6.13", body), ESME_TARGET)
    assert result.use_case == "ECS35b"
    apdu = decode_access_request(result.general_signing.payload)
    start = get_leaf(apdu, ("selection", 0, 1))
    assert from_leaf(Conversion.SECONDS_2000, start) == "2020-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "body",
    [
        {"LogToRead": "Event"},  # no period
        {"ReadLogPeriod": {"StartDateTime": "yesterday", "EndDateTime": "x"}, "LogToRead": "Event"},
        {
            "ReadLogPeriod": {"StartDateTime": "1990-01-01T00:00:00Z", "EndDateTime": "x"},
            "LogToRead": "Event",
        },
        {
            "ReadLogPeriod": {
                "StartDateTime": "2020-01-01T00:00:00Z",
                "EndDateTime": "2020-01-02T00:00:00Z",
            },
            "LogToRead": "GSMEEvent",  # a gas log from an ESME
        },
    ],
)
def test_unsupported_parameters_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(TransformError) as raised:
        transform(request("6.13", body), ESME_TARGET)
    assert raised.value.code is ResponseCode.INVALID_REQUEST


def test_role_and_esme_variant_choose_the_use_case() -> None:
    assert transform(request("6.2.10", role="ED"), ESME_TARGET).use_case == "ECS25r2"
    assert transform(request("6.2.10", role="IS"), ESME_TARGET).use_case == "ECS25r1"
    polyphase = Target(DeviceType.ESME, EsmeVariant.POLYPHASE)
    assert transform(request("6.2.1"), polyphase).use_case == "ECS26k"
    assert transform(request("6.2.1"), ESME_TARGET).use_case == "ECS26b"


def test_dcc_sent_use_case_needs_the_dcc_and_carries_the_user() -> None:
    with pytest.raises(TransformError, match="sent by the DCC"):
        transform(request("9.1"), ESME_TARGET)
    result = transform(request("9.1"), ESME_TARGET, dcc=DCC)
    gs = result.general_signing
    assert gs.originator == DCC.eui and gs.originator_counter == DCC.counter
    assert gs.other_information.supplementary_remote_party_id == SUPPLIER.value
    assert gs.other_information.supplementary_remote_party_counter == 1000


def test_urp_credentials_must_be_base64() -> None:
    body = {
        "ReadLogPeriod": {
            "StartDateTime": "2020-01-01T00:00:00Z",
            "EndDateTime": "2020-01-02T00:00:00Z",
        },
        "KAPublicSecurityCredentials": "not base64!",
    }
    with pytest.raises(TransformError, match="base64"):
        transform(request("4.14", body), ESME_TARGET, dcc=DCC)


def test_conversions_round_trip() -> None:
    leaf = Data(DataType.DOUBLE_LONG_UNSIGNED, 0)
    for text in ("0", "4294967295"):
        assert from_leaf(Conversion.UINT, to_leaf(Conversion.UINT, text, leaf, "x")) == text
    with pytest.raises(TransformError):
        to_leaf(Conversion.UINT, "4294967296", leaf, "x")
    with pytest.raises(TransformError):
        to_leaf(Conversion.UINT, "-1", leaf, "x")
    moment = "2030-01-15T09:00:00Z"
    octets = Data(DataType.OCTET_STRING, bytes(12))
    assert (
        from_leaf(
            Conversion.COSEM_DATE_TIME, to_leaf(Conversion.COSEM_DATE_TIME, moment, octets, "x")
        )
        == moment
    )
    for text in ("true", "false"):
        assert from_leaf(Conversion.BOOL, to_leaf(Conversion.BOOL, text, octets, "x")) == text
    with pytest.raises(TransformError):
        to_leaf(Conversion.BOOL, "maybe", octets, "x")


def test_cancellation_datetime_is_the_duis_one() -> None:
    assert dt.datetime(3000, 12, 31, tzinfo=dt.UTC) == CANCELLATION_DATETIME


def test_legacy_entry_point_keeps_working() -> None:
    result, gs = to_general_signing(
        request("7.2", cv=CommandVariant.CRITICAL_TRANSFORM), precommand=True
    )
    assert result.use_case == "ECS43" and gs.signature is None
    _, gs = to_general_signing(request("7.2", cv=CommandVariant.CRITICAL_TRANSFORM))
    assert gs.signature == b""
    assert "4.1.1" in supported_variants()


_text = st.one_of(
    st.text(max_size=20),
    st.integers().map(str),
    st.sampled_from(["", "true", "2020-01-01T00:00:00Z"]),
)
_body: st.SearchStrategy[object] = st.recursive(
    _text,
    lambda children: st.dictionaries(
        st.sampled_from(
            [
                "ReadLogPeriod",
                "StartDateTime",
                "EndDateTime",
                "LogToRead",
                "KAPublicSecurityCredentials",
                "X",
            ]
        ),
        children,
        max_size=4,
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    variant=st.sampled_from(sorted(MAPPINGS)),
    device=st.sampled_from(list(DeviceType)),
    body=st.dictionaries(
        st.sampled_from(["ReadLogPeriod", "LogToRead", "KAPublicSecurityCredentials", "Y"]),
        _body,
        max_size=3,
    ),
    cv=st.sampled_from(list(CommandVariant)),
    counter=st.integers(0, (1 << 64) - 1),
)
def test_fuzz_never_crashes(
    variant: str, device: DeviceType, body: dict[str, object], cv: CommandVariant, counter: int
) -> None:
    try:
        result = transform(request(variant, body, counter=counter, cv=cv), Target(device), dcc=DCC)
    except TransformError as exc:
        assert isinstance(exc.code, ResponseCode)
    else:
        assert result.general_signing.wire()


def test_gas_balance_adjustment_writes_zigbee_fields() -> None:
    gsme = Target(DeviceType.GSME)
    body: dict[str, object] = {"CreditMode": {"AdjustMeterBalance": "-1000"}}
    cv = CommandVariant.CRITICAL_TRANSFORM
    with pytest.raises(TransformError, match="time of issue"):
        transform(request("1.5", body, cv=cv), gsme)
    issued = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    result = transform(request("1.5", body, cv=cv), gsme, issued_at=issued)
    assert result.use_case == "GCS40c"
    payload = result.general_signing.payload
    assert payload[11:15] == (473385600).to_bytes(4, "little")  # issuer event id
    assert payload[20:24] == (-1000).to_bytes(4, "little", signed=True)
    with pytest.raises(TransformError, match="does not fit"):
        transform(
            request("1.5", {"CreditMode": {"AdjustMeterBalance": str(1 << 40)}}, cv=cv),
            gsme,
            issued_at=issued,
        )


def test_future_dated_and_cancelled_gas_payment_mode() -> None:
    gsme = Target(DeviceType.GSME)
    cv = CommandVariant.CRITICAL_TRANSFORM
    issued = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    when = dt.datetime(2030, 1, 15, 9, tzinfo=dt.UTC)
    future = transform(
        request("1.6", {"Credit": {}}, cv=cv, execution=when), gsme, issued_at=issued
    )
    seconds = int((when - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).total_seconds())
    assert future.general_signing.payload[19:23] == seconds.to_bytes(4, "little")
    cancel = transform(
        request("1.6", {"Credit": {}}, cv=cv, execution=CANCELLATION_DATETIME),
        gsme,
        issued_at=issued,
    )
    assert cancel.general_signing.payload[19:23] == b"\xff" * 4
    now = transform(request("1.6", {"Credit": {}}, cv=cv), gsme, issued_at=issued)
    assert now.general_signing.payload[19:23] == bytes(4)


def test_credential_type_values() -> None:
    esme_cv = CommandVariant.CRITICAL_TRANSFORM
    result = transform(
        request("6.17", {"CredentialType": "Key Agreement"}, cv=esme_cv), ESME_TARGET
    )
    assert result.general_signing.payload == bytes.fromhex("300403020308")
    with pytest.raises(TransformError, match="not one of"):
        transform(request("6.17", {"CredentialType": "Other"}, cv=esme_cv), ESME_TARGET)

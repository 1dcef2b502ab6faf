"""Property tests for the use-case layer: mutated real messages and arbitrary JSON parameters
give a value or a specific GbcsError, never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smarthydra.gbcs.errors import GbcsDecodeError, GbcsError
from smarthydra.gbcs.payload_json import ParamsError
from smarthydra.gbcs.rtds import read_hex_file
from smarthydra.gbcs.usecase import UseCaseParams, decode_use_case_message
from tests.conftest import CONFORMANCE

_SAMPLES = [
    "4.1.1_ECS17b/ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX",
    "4.4.2_GCS15b/GCS15b_4.4.2_SUCCESS_RESPONSE_GBCS.HEX",
    "NA_ECS68/ECS68_NA_8F0A_SINGLE_ALERT_GBCS.HEX",
    "7.2_ECS43/ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX",
    "2.1_ECS08/ECS08_2.1_8F66_FUTURE_DATED_SUCCESS_ALERT_CALENDAR_GBCS.HEX",
]


def _messages() -> list[bytes]:
    root = CONFORMANCE / "gbcs" / "rtds-4.5.0"
    return [read_hex_file(root / name) for name in _SAMPLES if (root / name).is_file()]


MESSAGES = _messages()


@pytest.mark.skipif(not MESSAGES, reason="conformance data not found")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=len(_SAMPLES) - 1),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=4),
    st.booleans(),
)
def test_mutated_real_messages(index: int, flips: list[tuple[int, int]], truncate: bool) -> None:
    data = bytearray(MESSAGES[index % len(MESSAGES)])
    for position, mask in flips:
        data[position % len(data)] ^= mask
    if truncate:
        del data[len(data) // 2 :]
    try:
        decoded = decode_use_case_message(bytes(data), encryption_z=bytes(32))
    except GbcsError:
        return
    decoded.to_json()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            [
                "payload", "xdlms", "gbz", "der", "apdu", "requests", "data", "kind",
                "class_id", "obis", "index", "invoke_id", "structure", "octet_string",
                "identifier", "children", "hex", "components", "control", "zcl", "body",
                "date_time", "sensitive", "results", "result", "count", "alert",
            ]
        ),
        children,
        max_size=5,
    ),
    max_leaves=25,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_json)
def test_arbitrary_json_params(value: object) -> None:
    try:
        params = UseCaseParams.from_json(value, counter=5)
    except ParamsError:
        return
    try:
        params.payload.encode()
    except GbcsError:
        return


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["access-request", "access-response", "data-notification"]),
    st.lists(st.integers(0, 300), max_size=3),
)
def test_plausible_xdlms_params(apdu: str, numbers: list[int]) -> None:
    value = {
        "payload": {
            "xdlms": {
                "apdu": apdu,
                "requests": [
                    {"kind": "get", "class_id": n, "obis": f"0-0:{n}.0.0.255", "index": 2}
                    for n in numbers
                ],
                "data": [{"unsigned": n} for n in numbers],
                "results": [{"kind": "get", "result": n} for n in numbers],
                "body": {"structure": [{"long_unsigned": n} for n in numbers]},
            }
        }
    }
    try:
        params = UseCaseParams.from_json(value, counter=1)
        wire = params.payload.encode()
    except GbcsError:
        return
    assert wire[0] in (0xD9, 0xDA, 0x0F)


def test_malformed_payload_is_a_decode_error(tmp_path: Path) -> None:
    # DD envelope around a general-signing part whose payload is neither codec.
    with pytest.raises(GbcsDecodeError):
        decode_use_case_message(
            bytes.fromhex(
                "DF0901"
                + "00" * 8
                + "08"
                + "11" * 8
                + "08"
                + "22" * 8
                + "00"
                + "020001"
                + "02FFFF"
                + "00"
            )
        )

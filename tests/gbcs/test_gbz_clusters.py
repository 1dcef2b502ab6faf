"""Typed ZCL cluster commands: every sensitive GBZ value in the RTDS decodes to one, exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.gbcs import security
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.errors import BadLength, GbcsDecodeError, GbcsEncodeError, Truncated
from smarthydra.gbcs.gbz import ClusterPayload, GbzPayload
from smarthydra.gbcs.gbz_clusters import (
    DebtRecord,
    GetSampledDataResponse,
    PublishDebtLog,
    PublishPrepaySnapshot,
    PublishSnapshot,
    cluster_command_to_json,
    decode_cluster_command,
)
from smarthydra.gbcs.rtds import RtdsKeystore, read_hex_file
from smarthydra.gbcs.usecase import decode_use_case_message
from tests.conftest import conformance_path

SAMPLED = bytes.fromhex("0100801b2a1c00ffff02004abe008e4400")


def test_every_rtds_sensitive_gbz_value_is_typed() -> None:
    root = conformance_path("gbcs")
    keys = RtdsKeystore.load(root / "rtds-keystore")
    kinds: set[str] = set()
    for path in sorted((root / "rtds-4.5.0").rglob("*.HEX")):
        wire = read_hex_file(path)
        gs = decode_message(wire).general_signing
        originator, _, party = security.encryption_parameters(gs)
        decoded = decode_use_case_message(wire, encryption_z=keys.shared_secret(originator, party))
        if not isinstance(decoded.payload, GbzPayload) or not decoded.params.sensitive:
            continue
        for value, plain in zip(decoded.sensitive_values(), decoded.params.sensitive, strict=True):
            assert not isinstance(value, ClusterPayload), path.name
            assert value.encode() == plain
            kinds.add(type(value).__name__)
    assert kinds >= {
        "GetSampledDataResponse",
        "PublishSnapshot",
        "PublishPrepaySnapshot",
        "PublishDebtLog",
        "ReadAttributesResponse",
    }


def test_sampled_data() -> None:
    value = decode_cluster_command(0x0702, 0x19, 0x07, SAMPLED)
    assert isinstance(value, GetSampledDataResponse)
    assert value.samples == (0x00BE4A, 0x00448E) and value.sample_request_interval == 0xFFFF
    assert value.encode() == SAMPLED
    assert cluster_command_to_json(value)["samples"] == [0x00BE4A, 0x00448E]
    with pytest.raises(BadLength, match="announces 2 samples"):
        decode_cluster_command(0x0702, 0x19, 0x07, SAMPLED[:-1])
    with pytest.raises(Truncated):
        decode_cluster_command(0x0702, 0x19, 0x07, SAMPLED[:5])


def test_snapshots_and_debt_log() -> None:
    snap = PublishSnapshot(12, 0x1C0E6C00, 2, 0, 1, 8, 6, b"\x90\x00")
    assert decode_cluster_command(0x0702, 0x19, 0x06, snap.encode()) == snap
    prepay = PublishPrepaySnapshot(0, 1, 1, 0, 1, 1, 0, b"")
    assert decode_cluster_command(0x0705, 0x19, 0x01, prepay.encode()) == prepay
    log = PublishDebtLog(0, 1, (DebtRecord(0x1C0E6C00, 0x027CB8, 2, 0),))
    assert decode_cluster_command(0x0705, 0x19, 0x06, log.encode()) == log
    assert cluster_command_to_json(log)["records"] == [
        {"collection_time": 0x1C0E6C00, "amount_collected": 0x027CB8, "debt_type": 2,
         "outstanding_debt": 0}
    ]  # fmt: skip
    with pytest.raises(BadLength, match="13-byte"):
        decode_cluster_command(0x0705, 0x19, 0x06, log.encode()[:-1])
    with pytest.raises(GbcsEncodeError):
        DebtRecord(-1, 0, 0, 0).encode()
    # Not typed here: client-to-server, profile-wide, other clusters and commands.
    assert decode_cluster_command(0x0702, 0x11, 0x07, SAMPLED) is None
    assert decode_cluster_command(0x0702, 0x18, 0x07, SAMPLED) is None
    assert decode_cluster_command(0x0700, 0x19, 0x07, SAMPLED) is None


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([(0x0702, 0x06), (0x0702, 0x07), (0x0705, 0x01), (0x0705, 0x06)]),
    st.binary(max_size=80),
)
def test_fuzz_cluster_commands(kind: tuple[int, int], data: bytes) -> None:
    try:
        value = decode_cluster_command(kind[0], 0x19, kind[1], data)
    except GbcsDecodeError:
        return
    assert value is not None and value.encode() == data

"""Typed ZCL cluster-specific commands carried in GBZ payloads (ZigBee Smart Energy 1.4).

The GBZ codec (:mod:`smarthydra.gbcs.gbz`) keeps a cluster-specific command's payload as bytes;
this module types the server-to-client commands the gas sensitive reads answer with, which
arrive encrypted (GCS13a/b/c, GCS15b/c/d, GCS16a/b, GCS18, GCS61, ...):

- Metering (0x0702) 0x06 PublishSnapshot and 0x07 GetSampledDataResponse;
- Prepayment (0x0705) 0x01 PublishPrepaySnapshot and 0x06 PublishDebtLog.

ZCL fields are little-endian. Snapshot payloads (whose layout depends on the payload type) are
kept as bytes. Every command re-encodes to the bytes it was decoded from; a length that does
not match its counts raises :class:`~smarthydra.gbcs.errors.BadLength`.
"""

from __future__ import annotations

from dataclasses import dataclass

from smarthydra.gbcs.errors import BadLength, GbcsEncodeError, Truncated

METERING = 0x0702
PREPAYMENT = 0x0705
_CLUSTER_SPECIFIC = 0x01
_SERVER_TO_CLIENT = 0x08
_SAMPLE_SIZE = 3
_DEBT_RECORD_SIZE = 13


def _le(value: int, size: int, what: str) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise GbcsEncodeError(f"ZCL {what} {value} does not fit in {size} bytes")
    return value.to_bytes(size, "little")


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def uint(self, size: int, field: str) -> int:
        end = self.pos + size
        if end > len(self.data):
            raise Truncated(f"{self.what}: {field} needs {size} bytes at offset {self.pos}")
        value = int.from_bytes(self.data[self.pos : end], "little")
        self.pos = end
        return value

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


@dataclass(frozen=True)
class GetSampledDataResponse:
    """Metering 0x07: consumption samples (uint24 each) from a start time, at an interval."""

    sample_id: int
    sample_start_time: int  # UTC seconds since 2000
    sample_type: int
    sample_request_interval: int
    samples: tuple[int, ...]

    def encode(self) -> bytes:
        return b"".join(
            [
                _le(self.sample_id, 2, "sample id"),
                _le(self.sample_start_time, 4, "sample start time"),
                _le(self.sample_type, 1, "sample type"),
                _le(self.sample_request_interval, 2, "sample request interval"),
                _le(len(self.samples), 2, "number of samples"),
                *(_le(s, _SAMPLE_SIZE, "sample") for s in self.samples),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> GetSampledDataResponse:
        r = _Reader(data, "GetSampledDataResponse")
        head = (r.uint(2, "sample id"), r.uint(4, "start time"), r.uint(1, "sample type"))
        interval = r.uint(2, "sample request interval")
        count = r.uint(2, "number of samples")
        body = r.rest()
        if len(body) != count * _SAMPLE_SIZE:
            raise BadLength(
                f"GetSampledDataResponse announces {count} samples, carries {len(body)} bytes"
            )
        samples = tuple(
            int.from_bytes(body[i : i + _SAMPLE_SIZE], "little")
            for i in range(0, len(body), _SAMPLE_SIZE)
        )
        return cls(*head, interval, samples)


@dataclass(frozen=True)
class Snapshot:
    """The common header of Metering PublishSnapshot (0x06) and Prepayment
    PublishPrepaySnapshot (0x01); the snapshot payload is kept as bytes."""

    snapshot_id: int  # issuer event id (Metering) or snapshot id (Prepayment)
    snapshot_time: int  # UTC seconds since 2000
    snapshots_found: int
    command_index: int
    total_commands: int
    snapshot_cause: int  # bitmap32
    payload_type: int
    payload: bytes

    def encode(self) -> bytes:
        return b"".join(
            [
                _le(self.snapshot_id, 4, "snapshot id"),
                _le(self.snapshot_time, 4, "snapshot time"),
                _le(self.snapshots_found, 1, "snapshots found"),
                _le(self.command_index, 1, "command index"),
                _le(self.total_commands, 1, "total commands"),
                _le(self.snapshot_cause, 4, "snapshot cause"),
                _le(self.payload_type, 1, "snapshot payload type"),
                self.payload,
            ]
        )

    @classmethod
    def decode(cls, data: bytes, what: str) -> Snapshot:
        r = _Reader(data, what)
        return cls(
            r.uint(4, "snapshot id"),
            r.uint(4, "snapshot time"),
            r.uint(1, "snapshots found"),
            r.uint(1, "command index"),
            r.uint(1, "total commands"),
            r.uint(4, "snapshot cause"),
            r.uint(1, "snapshot payload type"),
            r.rest(),
        )


@dataclass(frozen=True)
class PublishSnapshot(Snapshot):
    """Metering 0x06."""


@dataclass(frozen=True)
class PublishPrepaySnapshot(Snapshot):
    """Prepayment 0x01."""


@dataclass(frozen=True)
class DebtRecord:
    collection_time: int  # UTC seconds since 2000
    amount_collected: int
    debt_type: int
    outstanding_debt: int

    def encode(self) -> bytes:
        return (
            _le(self.collection_time, 4, "collection time")
            + _le(self.amount_collected, 4, "amount collected")
            + _le(self.debt_type, 1, "debt type")
            + _le(self.outstanding_debt, 4, "outstanding debt")
        )


@dataclass(frozen=True)
class PublishDebtLog:
    """Prepayment 0x06: debt collection records."""

    command_index: int
    total_commands: int
    records: tuple[DebtRecord, ...]

    def encode(self) -> bytes:
        return (
            _le(self.command_index, 1, "command index")
            + _le(self.total_commands, 1, "total commands")
            + b"".join(r.encode() for r in self.records)
        )

    @classmethod
    def decode(cls, data: bytes) -> PublishDebtLog:
        r = _Reader(data, "PublishDebtLog")
        index, total = r.uint(1, "command index"), r.uint(1, "total commands")
        body = r.rest()
        if len(body) % _DEBT_RECORD_SIZE:
            raise BadLength(f"PublishDebtLog: {len(body)} bytes is not a list of 13-byte records")
        records = []
        for i in range(0, len(body), _DEBT_RECORD_SIZE):
            rec = _Reader(body[i : i + _DEBT_RECORD_SIZE], "debt record")
            records.append(
                DebtRecord(
                    rec.uint(4, "collection time"),
                    rec.uint(4, "amount collected"),
                    rec.uint(1, "debt type"),
                    rec.uint(4, "outstanding debt"),
                )
            )
        return cls(index, total, tuple(records))


ClusterCommand = GetSampledDataResponse | PublishSnapshot | PublishPrepaySnapshot | PublishDebtLog


def decode_cluster_command(
    cluster_id: int, frame_control: int, command_id: int, data: bytes
) -> ClusterCommand | None:
    """The typed command, or None when this cluster / command is not typed here.

    Raises a :class:`~smarthydra.gbcs.errors.GbcsDecodeError` subclass for a typed command
    whose bytes do not fit its layout.
    """
    if frame_control & 0x03 != _CLUSTER_SPECIFIC or not frame_control & _SERVER_TO_CLIENT:
        return None
    if cluster_id == METERING and command_id == 0x07:
        return GetSampledDataResponse.decode(data)
    if cluster_id == METERING and command_id == 0x06:
        s = Snapshot.decode(data, "PublishSnapshot")
        return PublishSnapshot(**vars(s))
    if cluster_id == PREPAYMENT and command_id == 0x01:
        s = Snapshot.decode(data, "PublishPrepaySnapshot")
        return PublishPrepaySnapshot(**vars(s))
    if cluster_id == PREPAYMENT and command_id == 0x06:
        return PublishDebtLog.decode(data)
    return None


def cluster_command_to_json(command: ClusterCommand) -> dict[str, object]:
    """``{"command": name, field: value, ...}`` with bytes as hex (display only)."""

    def plain(value: object) -> object:
        if isinstance(value, bytes):
            return value.hex()
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, DebtRecord):
            return {k: plain(v) for k, v in vars(value).items()}
        return value

    return {"command": type(command).__name__, **{k: plain(v) for k, v in vars(command).items()}}

"""Device alerts: the alert code, its time and its data, in all three GBCS payload forms.

- xDLMS (ESME, comms hub): a data-notification whose body is ``structure { alert code
  long-unsigned, date-time octet-string(12), data... }``;
- GBZ (gas): the GBZ alert header (alert code, UTC seconds since 2000) then components, a
  future-dated-alert block, a firmware hash or use-case specific bytes;
- DER (security alerts such as CS02b / CS06 future-dated outcomes, CCS08, GCS62):
  ``SEQUENCE { alertCode INTEGER, time GeneralizedTime, data... }``.

:func:`device_alert` reads any of them into a :class:`DeviceAlert`; :func:`dlms_alert`,
:func:`gbz_alert` and :func:`der_alert` build the payloads from device data for
:func:`smarthydra.gbcs.usecase.build_alert`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from smarthydra.gbcs.axdr import CosemDateTime, Data, DataType
from smarthydra.gbcs.catalogue import Catalogue
from smarthydra.gbcs.der import DerNode, TagClass, Universal
from smarthydra.gbcs.errors import BadField, GbcsEncodeError
from smarthydra.gbcs.gbz import FutureDatedAlert, GbzAlertHeader, GbzComponent, GbzPayload
from smarthydra.gbcs.payload_json import Payload, invoke_id_for
from smarthydra.gbcs.xdlms import AccessRequest, AccessResponse, DataNotification

GBZ_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_GENERALIZED_TIME = "%Y%m%d%H%M%SZ"

AlertData = Data | GbzComponent | FutureDatedAlert | DerNode | bytes
"""One item of alert data: A-XDR Data, a GBZ component, a future-dated block, a DER node,
or raw bytes (a GBZ firmware hash or use-case specific bytes)."""


@dataclass(frozen=True)
class DeviceAlert:
    """What a device reported: the 2-byte alert code, when, and the alert's own data."""

    alert_code: int
    time: datetime | None  # None when the device sent an unspecified date-time
    data: tuple[AlertData, ...]
    codec: str  # "xdlms", "gbz" or "der"
    description: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "alert_code": f"{self.alert_code:04X}",
            "description": self.description,
            "time": None if self.time is None else self.time.isoformat(),
            "codec": self.codec,
            "data_items": len(self.data),
        }


def _cosem_time(raw: bytes) -> datetime | None:
    try:
        value = CosemDateTime.from_bytes(raw)
        if 0xFF in (value.month, value.day, value.hour, value.minute) or value.year == 0xFFFF:
            return None
        return datetime(
            value.year, value.month, value.day, value.hour, value.minute,
            0 if value.second == 0xFF else value.second, tzinfo=UTC,
        )  # fmt: skip
    except (ValueError, BadField):
        return None


def device_alert(payload: Payload, catalogue: Catalogue | None = None) -> DeviceAlert:
    """Read the alert code, time and data out of an alert payload (raises BadField when the
    payload is not an alert)."""
    if isinstance(payload, GbzPayload):
        if payload.alert is None:
            raise BadField("GBZ payload carries no alert header")
        rest: list[AlertData] = list(payload.components)
        if payload.future_dated is not None:
            rest.append(payload.future_dated)
        if payload.hash is not None:
            rest.append(payload.hash)
        if payload.specific:
            rest.append(payload.specific)
        alert = DeviceAlert(
            payload.alert.alert_code,
            GBZ_EPOCH + timedelta(seconds=payload.alert.time_stamp),
            tuple(rest),
            "gbz",
        )
    elif isinstance(payload, DerNode):
        kids = payload.children
        if (
            len(kids) < 2
            or not kids[0].is_universal(Universal.INTEGER)
            or not kids[1].is_universal(Universal.GENERALIZED_TIME)
        ):
            raise BadField("DER alert is SEQUENCE { INTEGER alert code, GeneralizedTime, ... }")
        try:
            moment: datetime | None = datetime.strptime(
                kids[1].content.decode("ascii"), _GENERALIZED_TIME
            ).replace(tzinfo=UTC)
        except (UnicodeDecodeError, ValueError):
            moment = None
        alert = DeviceAlert(kids[0].as_int(), moment, tuple(kids[2:]), "der")
    elif isinstance(payload, DataNotification):
        items = payload.body.value
        if (
            payload.body.type is not DataType.STRUCTURE
            or not isinstance(items, list)
            or len(items) < 2
            or items[0].type is not DataType.LONG_UNSIGNED
            or items[1].type is not DataType.OCTET_STRING
        ):
            raise BadField("DLMS alert body is structure { alert code, date-time, ... }")
        code = items[0].value
        stamp = items[1].value
        assert isinstance(code, int) and isinstance(stamp, bytes)
        alert = DeviceAlert(code, _cosem_time(stamp), tuple(items[2:]), "xdlms")
    else:
        assert isinstance(payload, AccessRequest | AccessResponse)
        raise BadField(f"an {type(payload).__name__} is not an alert payload")
    if catalogue is not None:
        alert = DeviceAlert(
            alert.alert_code,
            alert.time,
            alert.data,
            alert.codec,
            catalogue.describe_alert_code(alert.alert_code),
        )
    return alert


def _cosem_bytes(moment: datetime | None) -> bytes:
    if moment is None:
        return bytes.fromhex("FFFFFFFFFFFFFFFFFF8000FF")
    moment = moment.astimezone(UTC)
    return CosemDateTime(
        moment.year, moment.month, moment.day, 0xFF, moment.hour, moment.minute,
        moment.second, 0, -0x8000, 0xFF,
    ).to_bytes()  # fmt: skip


def dlms_alert(
    alert_code: int,
    moment: datetime | None,
    data: Sequence[Data] = (),
    *,
    counter: int,
) -> DataNotification:
    """An ESME / comms hub alert payload (data-notification), invoke id from the counter."""
    if not 0 <= alert_code <= 0xFFFF:
        raise GbcsEncodeError(f"alert code {alert_code:#x} is not 2 bytes")
    body = Data(
        DataType.STRUCTURE,
        [
            Data(DataType.LONG_UNSIGNED, alert_code),
            Data(DataType.OCTET_STRING, _cosem_bytes(moment)),
            *data,
        ],
    )
    return DataNotification(invoke_id_for(counter), None, body)


def gbz_alert(
    alert_code: int,
    moment: datetime,
    components: Sequence[GbzComponent] = (),
    *,
    future_dated: FutureDatedAlert | None = None,
    firmware_hash: bytes | None = None,
    specific: bytes = b"",
) -> GbzPayload:
    """A gas alert payload: GBZ alert header then its data."""
    seconds = int((moment.astimezone(UTC) - GBZ_EPOCH).total_seconds())
    if not 0 <= seconds < 1 << 32:
        raise GbcsEncodeError(f"{moment} is outside the GBZ time range (2000 + 2^32 s)")
    extra = future_dated is not None or firmware_hash is not None or bool(specific)
    count = len(components) if components or not extra else 1
    return GbzPayload(
        count,
        tuple(components),
        alert=GbzAlertHeader(alert_code, seconds),
        future_dated=future_dated,
        hash=firmware_hash,
        specific=specific,
    )


def der_alert(alert_code: int, moment: datetime, data: Sequence[DerNode] = ()) -> DerNode:
    """A security alert payload: ``SEQUENCE { INTEGER, GeneralizedTime, data... }``."""
    code = alert_code.to_bytes((alert_code.bit_length() + 8) // 8, "big")  # keep it positive
    stamp = moment.astimezone(UTC).strftime(_GENERALIZED_TIME).encode("ascii")
    return DerNode(
        TagClass.UNIVERSAL,
        True,
        Universal.SEQUENCE,
        children=(
            DerNode(TagClass.UNIVERSAL, False, Universal.INTEGER, content=code),
            DerNode(TagClass.UNIVERSAL, False, Universal.GENERALIZED_TIME, content=stamp),
            *data,
        ),
    )

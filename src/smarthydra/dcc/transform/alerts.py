"""6.22 Configure Alert Behaviour: DUIS alert settings -> the device's alert filters.

ESME (ECS25a/a1/a2/a3, ECS25b/b3): one SET of a 512-bit filter object per setting kind
(0-0:30.97.98.11-14 for the supplier, 0-0:33.97.98.11/14 for the network operator). The bit
string is two 256-bit halves, each indexed by the low byte of the alert code with bit 0 the
least significant bit of the half's last octet: the first half says which alerts the command
changes, the second whether each is enabled. Read from the RTDS: in every ECS25 command the
second half is a subset of the first, and the alerts set are exactly those the DUIS
elements (xNNNN, by the alert code) can name, supplier codes 0x81xx, network operator codes
0x80xx.

GSME (GCS20): ZCL Set Event Configuration (device management cluster), one component per
distinct event configuration, each listing its alert codes; the configuration byte is ZCL's
(log as a general event 0x03, push to WAN 0x08, push to HAN 0x10, raise the meter's alarm
0x40).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from smarthydra.dcc.transform.gas import ZclCommand, components, gbz, utc_time
from smarthydra.dcc.transform.spec import (
    Body,
    BodyCodec,
    LeafCodecLike,
    TransformError,
)
from smarthydra.gbcs.axdr import BitString, Data, DataType

ENABLE, DISABLE = "Enable", "Disable"
FILTER_BITS = 512
HALF = FILTER_BITS // 2


def _codes(text: str) -> tuple[int, ...]:
    return tuple(int(code, 16) for code in text.split())


# The alert codes each DUIS alert-settings type names (duis-5.4.xsd), in schema order.
SUPPLIER_ESME_COMMON = _codes(
    "810D 810E 8119 8145 8154 8155 8161 8162 8168 8183 81A0 81A1 81A2 81A3 81A4 81A5 81A6 "
    "81A7 81A8 81A9 81AA 81AB 81AC 81AD 81AE 81AF 81B0 81B1 81B2 81B3 81B8 81B9 81BA 81BB "
    "81BC 81BD 81BE 81C0 81C1 81C4 81C5 81C6"
)
SUPPLIER_ESME_POLYPHASE = (0x81B7,)
NETWORK_OPERATOR_ESME_COMMON = (0x8014, 0x8015)
NETWORK_OPERATOR_ESME_SINGLE_PHASE = _codes(
    "8002 8006 8020 8024 8028 802C 8085 8089 808D 8091 8095 8099 8010"
)
NETWORK_OPERATOR_ESME_POLYPHASE = _codes(
    "8003 8004 8005 8007 8008 8009 8021 8022 8023 8025 8026 8027 8029 802A 802B 802D 802E "
    "802F 8086 8087 8088 808A 808B 808C 808E 808F 8090 8092 8093 8094 8096 8097 8098 809A "
    "809B 809C 8011 8016 8013"
)
SUPPLIER_GSME_EVENTS = _codes(
    "810D 810E 8119 8145 8154 8155 8161 8162 8168 8183 8184 81A0 81A1 81A4 81A5 81A6 81A7 "
    "81A8 81A9 81AA 81AB 81AC 81AD 81AE 81AF 81B0 81B1 81B2 81B3 81B4 81B5 81B6 81B9 81BA "
    "81BC 81BD 81BE 81BF 81C0 81C2 81C3 81C4 81C5 81C6"
)

SUPPLIER_GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("SupplierESMECommon", SUPPLIER_ESME_COMMON),
    ("SupplierESMEPolyPhase", SUPPLIER_ESME_POLYPHASE),
)
NETWORK_OPERATOR_GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("NetworkOperatorESMECommon", NETWORK_OPERATOR_ESME_COMMON),
    ("NetworkOperatorESMESinglePhase", NETWORK_OPERATOR_ESME_SINGLE_PHASE),
    ("NetworkOperatorESMEPolyPhase", NETWORK_OPERATOR_ESME_POLYPHASE),
)


def alert_name(code: int) -> str:
    """The DUIS element naming an alert code (``x81C4``)."""
    return f"x{code:04X}"


def _enabled(value: object, what: str) -> bool:
    if value not in (ENABLE, DISABLE):
        raise TransformError(f"{what}: {value!r} is neither {ENABLE} nor {DISABLE}")
    return value == ENABLE


def _set_bit(half: bytearray, index: int) -> None:
    half[len(half) - 1 - index // 8] |= 1 << (index % 8)


def _bit(half: bytes, index: int) -> bool:
    return bool(half[len(half) - 1 - index // 8] >> (index % 8) & 1)


@dataclass(frozen=True)
class AlertFilter(LeafCodecLike):
    """An ESME alert filter (changed alerts, then enabled alerts) from the DUIS element
    ``element`` whose children (``groups``) each name some alert codes."""

    element: str
    groups: tuple[tuple[str, tuple[int, ...]], ...]

    def build(self, body: Body) -> Data:
        node = body.get(self.element)
        if not isinstance(node, dict):
            raise TransformError(f"{self.element} is missing")
        changed, enabled = bytearray(HALF // 8), bytearray(HALF // 8)
        count = 0
        for group, codes in self.groups:
            settings = node.get(group)
            if settings is None:
                continue
            if not isinstance(settings, dict):
                raise TransformError(f"{self.element}/{group} has no alert settings")
            known = {alert_name(code): code for code in codes}
            for name, value in settings.items():
                code = known.get(name)
                if code is None:
                    raise TransformError(f"{self.element}/{group}: {name} is not one of its alerts")
                _set_bit(changed, code & 0xFF)
                if _enabled(value, f"{group}/{name}"):
                    _set_bit(enabled, code & 0xFF)
                count += 1
        if not count:
            raise TransformError(f"{self.element}: no alert to configure")
        return Data(DataType.BIT_STRING, BitString(FILTER_BITS, bytes(changed + enabled)))

    def parse(self, leaf: Data) -> Body:
        value = leaf.value
        if not isinstance(value, BitString) or value.length != FILTER_BITS:
            raise TransformError(f"{self.element}: not a {FILTER_BITS}-bit alert filter")
        changed, enabled = value.data[: HALF // 8], value.data[HALF // 8 :]
        out: Body = {}
        seen: set[int] = set()
        for group, codes in self.groups:
            for code in codes:
                if _bit(changed, code & 0xFF):
                    seen.add(code & 0xFF)
                    out[f"{self.element}/{group}/{alert_name(code)}"] = (
                        ENABLE if _bit(enabled, code & 0xFF) else DISABLE
                    )
        stray = [i for i in range(HALF) if (_bit(changed, i) or _bit(enabled, i)) and i not in seen]
        if stray:
            raise TransformError(f"{self.element}: filter bits {stray} name no DUIS alert")
        return out


# --- GSME ------------------------------------------------------------------------------------

DEVICE_MANAGEMENT_CLUSTER = 0x0708
SET_EVENT_CONFIGURATION = 0x04
APPLY_BY_LIST = 0x00
GAS_EVENT_SETTINGS = "GasSupplierAlertEventSettings"
# DUIS flag -> ZCL event configuration bits
EVENT_FLAGS: tuple[tuple[str, int], ...] = (
    ("EventLog", 0x03),  # log as a general event
    ("WANAlert", 0x08),  # push the event to the WAN
    ("HANAlert", 0x10),  # push the event to the HAN
    ("Alarm", 0x40),  # raise the meter's own alarm
)
EVENT_CONFIGURATION_MASK = 0x5B


def event_configuration(settings: object, what: str) -> int:
    if not isinstance(settings, dict):
        raise TransformError(f"{what}: no WANAlert, HANAlert, EventLog and Alarm settings")
    value = 0
    for flag, bits in EVENT_FLAGS:
        if flag not in settings:
            raise TransformError(f"{what}: {flag} is missing")
        if _enabled(settings[flag], f"{what}/{flag}"):
            value |= bits
    return value


@dataclass(frozen=True)
class GasAlertConfiguration(BodyCodec):
    """GCS20: one ZCL Set Event Configuration (apply by list) per distinct configuration,
    its alert codes in ascending order; issuer event id the DCC's time of issue, start now.

    The DUIS body cannot order the configurations (the schema fixes the element order):
    they go in the order their first alert has in the schema. The RTDS commands order them
    otherwise (by no rule their alerts or configurations show), so they are reproduced up to
    the order of their components."""

    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        if issued_at is None:
            raise TransformError("gas alert configuration: the time of issue is needed")
        node = body.get(GAS_EVENT_SETTINGS)
        if not isinstance(node, dict) or not node:
            raise TransformError(f"{GAS_EVENT_SETTINGS}: no alert to configure")
        known = {alert_name(code): code for code in SUPPLIER_GSME_EVENTS}
        unknown = [name for name in node if name not in known]
        if unknown:
            raise TransformError(f"{GAS_EVENT_SETTINGS}: {unknown} are not GSME alerts")
        by_configuration: dict[int, list[int]] = {}
        for name, code in known.items():  # schema order
            settings = node.get(name)
            if settings is None:
                continue
            configuration = event_configuration(settings, f"{GAS_EVENT_SETTINGS}/{name}")
            by_configuration.setdefault(configuration, []).append(code)
        issuer = utc_time(issued_at, "time of issue")
        commands = []
        for configuration in by_configuration:
            codes = sorted(by_configuration[configuration])
            payload = (
                issuer
                + bytes(4)  # start: now
                + bytes([configuration, APPLY_BY_LIST, len(codes)])
                + b"".join(code.to_bytes(2, "little") for code in codes)
            )
            commands.append(ZclCommand(DEVICE_MANAGEMENT_CLUSTER, SET_EVENT_CONFIGURATION, payload))
        return gbz(commands)

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        settings: Body = {}
        for zcl in components(payload):
            if len(zcl) < 11 or zcl[9] != APPLY_BY_LIST or len(zcl) != 11 + 2 * zcl[10]:
                raise TransformError("GCS20: not a Set Event Configuration by list")
            configuration = zcl[8]
            if configuration & ~EVENT_CONFIGURATION_MASK:
                raise TransformError(f"GCS20: configuration {configuration:#04x} has no DUIS form")
            flags = {
                flag: ENABLE if configuration & bits == bits else DISABLE
                for flag, bits in EVENT_FLAGS
            }
            for i in range(zcl[10]):
                code = int.from_bytes(zcl[11 + 2 * i : 13 + 2 * i], "little")
                settings[alert_name(code)] = dict(flags)
        ordered = {
            alert_name(c): settings[alert_name(c)]
            for c in SUPPLIER_GSME_EVENTS
            if alert_name(c) in settings
        }
        if len(ordered) != len(settings):
            raise TransformError("GCS20: an alert code is not a GSME alert")
        return {GAS_EVENT_SETTINGS: ordered}, None

    def issued(self, payload: bytes) -> dt.datetime | None:
        first = components(payload)[0]
        return dt.datetime(2000, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=int.from_bytes(first[:4], "little")
        )

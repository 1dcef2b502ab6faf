"""The gas smart meter (GSME): battery powered, ZigBee (GBZ) payloads, an energy budget.

The GSME runs the same GBCS checks as the ESME (ACB MAC, trusted originator, anti-replay,
supplier signature on critical commands) and then serves the GBZ payload with a small ZCL
server over its state: Metering (volume registers, supply valve, profile samples,
snapshots), Prepayment (payment mode, credit adjustment), Price / Calendar (tariff
publications) and Device Management (alert configuration).

Every radio and crypto operation is counted by :class:`EnergyLedger` against the battery;
:func:`project_battery_life` turns a day's spending into years.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from smarthydra.clock import Clock
from smarthydra.crypto.keystore import Keystore
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.builder import build_general_signing, build_response, sign_message
from smarthydra.gbcs.der import decode_der
from smarthydra.gbcs.envelope import CraFlag, decode_message
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.esme_payloads import cosem_date_time
from smarthydra.gbcs.gbz import (
    CONTROL_ENCRYPTED,
    CONTROL_LAST,
    AttributeRecord,
    ClusterPayload,
    DefaultResponse,
    EncryptedZcl,
    GbzComponent,
    GbzPayload,
    ReadAttributes,
    ReadAttributesResponse,
    WriteAttributes,
    WriteAttributesResponse,
    ZclHeader,
    ZclType,
    ZclValue,
    decode_gbz,
)
from smarthydra.premises import der_cases
from smarthydra.premises.esme import (
    DS_LABEL,
    KA_LABEL,
    ElectricityMeter,
    RemoteParty,
    SecurityEvent,
    TrustAnchorRole,
)
from smarthydra.premises.esme_model import GBCS_EPOCH
from smarthydra.premises.usecases import Role, Target, use_case

METERING = 0x0702
PREPAYMENT = 0x0705
PRICE = 0x0700
CALENDAR = 0x0707
DEVICE_MANAGEMENT = 0x0708

STATUS_SUCCESS = 0x00
STATUS_UNSUP_COMMAND = 0x81
STATUS_INVALID_FIELD = 0x85
STATUS_UNSUPPORTED_ATTRIBUTE = 0x86
STATUS_NOT_FOUND = 0x8B

# Server-to-client frame controls as GBCS devices send them.
FC_PROFILE_RESPONSE = 0x08
FC_PROFILE_RESPONSE_NO_DEFAULT = 0x18
FC_CLUSTER_RESPONSE = 0x09
FC_CLUSTER_RESPONSE_NO_DEFAULT = 0x19


def zcl_time(moment: dt.datetime) -> int:
    """ZigBee UTCTime: seconds since 2000-01-01."""
    return int((moment - GBCS_EPOCH).total_seconds())


# The clock_status byte of the Date-Time in answers to the reads a gas proxy can serve from its
# copy (GCS13a/b/c, GCS14), as the RTDS shows it (COSEM clock status bits):
# 00 - answered by the GPF from a reliable copy stamped on its own clock ("RELIABLE_GPF");
# 04 - "different clock base": answered by the GPF from a reliable copy that carries the gas
#      meter's time because that differs from the hub's ("RELIABLE_GSME");
# 02 - "doubtful value": the data's time cannot be trusted, a gas meter answering on a clock
#      that no GCS28 has synchronised ("UNRELIABLE") or a GPF copy older than its maximum age;
#      a synchronised gas meter answers with 00 (the RTDS "ERROR" answers of the gas meter).
CLOCK_RELIABLE = 0x00
CLOCK_DOUBTFUL = 0x02
CLOCK_METER_BASE = 0x04
COPY_READS = frozenset({"GCS13a", "GCS13b", "GCS13c", "GCS14"})
CLOCK_AGREEMENT = dt.timedelta(seconds=10)  # the meter's time "agrees" with the hub's within


def stamped_date_time(moment: dt.datetime, clock_status: int) -> bytes:
    """A 12-byte COSEM date-time (UTC, deviation not specified) with ``clock_status``."""
    return cosem_date_time(moment)[:11] + bytes([clock_status])


# --- energy -----------------------------------------------------------------------------------


class Operation(enum.Enum):
    WAKE = "wake"
    RADIO_RX = "radio receive"
    RADIO_TX = "radio transmit"
    ECDH = "ECDH"
    ECDSA_SIGN = "ECDSA sign"
    ECDSA_VERIFY = "ECDSA verify"
    AES = "AES block op"
    VALVE = "valve motor"


# Joules per operation: a battery gas meter with a ZigBee radio and a P-256 capable MCU.
# (Radio at ~30 mA/3.6 V for tens of ms with wake-up and listen windows; P-256 in software on
# a low-power MCU ~0.5-1 s at ~10 mA; valve motor ~ 1 s at 200 mA.)
DEFAULT_COSTS: dict[Operation, float] = {
    Operation.WAKE: 0.010,
    Operation.RADIO_RX: 0.030,
    Operation.RADIO_TX: 0.045,
    Operation.ECDH: 0.030,
    Operation.ECDSA_SIGN: 0.035,
    Operation.ECDSA_VERIFY: 0.070,
    Operation.AES: 0.0002,
    Operation.VALVE: 0.72,
}
# ~64 uA average at 3.6 V: flow sensing, display, real-time clock, valve monitoring, and the
# cell's self-discharge, which over 15 years costs as much as the meter itself.
SLEEP_JOULES_PER_DAY = 20.0
BATTERY_JOULES = 19.0 * 3.6 * 3600 * 0.8  # one 19 Ah lithium thionyl chloride D cell, 80 % usable
TARGET_YEARS = 15.0


@dataclass
class EnergyLedger:
    costs: dict[Operation, float] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    counts: dict[Operation, int] = field(default_factory=dict)
    spent_joules: float = 0.0

    def spend(self, op: Operation, times: int = 1) -> None:
        self.counts[op] = self.counts.get(op, 0) + times
        self.spent_joules += self.costs[op] * times

    def message_exchange(self, *, critical: bool, encrypt: bool) -> None:
        """What one command costs: wake, receive, MAC check (ECDH), act, MAC'd/signed answer."""
        self.spend(Operation.WAKE)
        self.spend(Operation.RADIO_RX)
        self.spend(Operation.ECDH)  # Z with the ACB to check the MAC
        self.spend(Operation.AES, 4)
        if critical:
            self.spend(Operation.ECDSA_VERIFY)
            self.spend(Operation.ECDSA_SIGN)
        else:
            self.spend(Operation.ECDH)  # Z with the requester to MAC the response
            self.spend(Operation.AES, 4)
        if encrypt:
            self.spend(Operation.AES, 8)
        self.spend(Operation.RADIO_TX)


@dataclass(frozen=True)
class BatteryProjection:
    joules_per_day: float
    years: float
    meets_target: bool

    @classmethod
    def from_daily(cls, joules_per_day: float, battery: float = BATTERY_JOULES) -> BatteryProjection:
        per_day = joules_per_day + SLEEP_JOULES_PER_DAY
        years = battery / per_day / 365.25
        return cls(per_day, years, years >= TARGET_YEARS)


def project_battery_life(ledger: EnergyLedger, days: float) -> BatteryProjection:
    return BatteryProjection.from_daily(ledger.spent_joules / days)


DEFAULT_PUSHES_PER_DAY = 48  # the gas meter sends its data to the GPF every half hour
DEFAULT_READ_BUDGET = 4  # pass-through reads a day the GPF lets reach the gas meter


def schedule_projection(flood_reads_per_day: int = 0, *, with_gpf: bool = True,
                        read_budget: int = DEFAULT_READ_BUDGET) -> BatteryProjection:
    """Battery life under the default schedule plus ``flood_reads_per_day`` extra reads.

    The default schedule: a push to the GPF every half hour, one daily-log read and one
    critical command a week. Without the GPF every read reaches the gas meter.
    """
    ledger = EnergyLedger()
    for _ in range(DEFAULT_PUSHES_PER_DAY):  # as GasMeter.mirror_snapshot spends it
        ledger.spend(Operation.WAKE)
        ledger.spend(Operation.AES, 4)
        ledger.spend(Operation.RADIO_TX)
        ledger.spend(Operation.RADIO_RX)  # the hub's acknowledgement
    ledger.message_exchange(critical=False, encrypt=True)  # the daily read log
    weekly = EnergyLedger()
    weekly.message_exchange(critical=True, encrypt=False)
    reaching = min(flood_reads_per_day, read_budget) if with_gpf else flood_reads_per_day
    for _ in range(reaching):
        ledger.message_exchange(critical=False, encrypt=True)
    return BatteryProjection.from_daily(ledger.spent_joules + weekly.spent_joules / 7)


# --- the gas meter's state --------------------------------------------------------------------


class ValveState(enum.IntEnum):
    """ZCL Metering supply status."""

    OFF = 0
    ARMED = 1
    ON = 2


# ZCL Price cluster commands a GCS01a / GCS01b publishes to the gas meter.
PUBLISH_TARIFF_INFORMATION = 0x04
PUBLISH_PRICE_MATRIX = 0x05
PUBLISH_BLOCK_THRESHOLDS = 0x06
START_NOW = 0x00000000
START_CANCEL = frozenset({0xFFFFFFFF, 0xFFFFFFFE})
BLOCK_SCHEME = 0x10  # tariff type / charging scheme: block tariff (0x00: TOU)


@dataclass
class GasTariff:
    """The gas meter's tariff as the Price cluster published it: prices in units of
    10^-``price_digits`` of the currency per m3 (the GBCS gas tariff prices the volume the
    meter measures), the standing charge per day in the same units, and for a block tariff
    the thresholds (m3, cumulative since the tariff took effect) between the block prices."""

    block: bool = False
    standing_charge: int = 0
    price_digits: int = 5
    tou_prices: dict[int, int] = field(default_factory=dict)  # tier (1-4) -> price
    block_prices: list[int] = field(default_factory=list)  # block 1..n
    thresholds_litres: list[int] = field(default_factory=list)
    threshold_multiplier: int = 1
    threshold_divisor: int = 1000
    starts: int = START_NOW  # ZigBee UTCTime it takes effect (0: at once)
    litres_in_period: int = 0

    def price_now(self) -> int:
        """The price of the next litre: the block the period's consumption has reached, or
        the first TOU tier (the calendar's day actions select tier 1 on every day profile
        this model keeps; other tiers are kept as published)."""
        if self.block:
            block = sum(1 for t in self.thresholds_litres if self.litres_in_period >= t)
            return self.block_prices[min(block, len(self.block_prices) - 1)] if self.block_prices else 0
        return self.tou_prices.get(min(self.tou_prices), 0) if self.tou_prices else 0


@dataclass
class GasState:
    volume_m3_thousandths: int = 0  # current summation delivered, in 0.001 m3
    valve: ValveState = ValveState.ON
    payment_mode_prepayment: bool = False
    meter_balance: int = 0
    emergency_credit_limit: int = 1_000_000
    emergency_credit_threshold: int = 200_000
    samples: list[tuple[dt.datetime, int]] = field(default_factory=list)  # half-hour volumes
    snapshots: list[tuple[dt.datetime, int]] = field(default_factory=list)  # daily register
    bill_to_date: int = 0  # credit-mode meter balance (ZSE BillToDateDelivered)
    prepayment_configs: int = 0
    prepayment_settings: list[bytes] = field(default_factory=list)
    tariff_publications: int = 0
    tariff_tables: dict[tuple[int, int], bytes] = field(default_factory=dict)
    alert_configs: int = 0
    clock_offset: dt.timedelta = dt.timedelta(0)
    clock_synchronised: bool = True  # False until a GCS28 sets a clock found adrift
    tariff: GasTariff | None = None  # the tariff in force (GCS01a/b)
    pending_tariff: GasTariff | None = None  # published, future-dated
    disablement_threshold: int = 0  # prepayment: the valve closes when credit falls below
    cost_remainder: int = 0  # litre-prices not yet a whole unit (price x litres / 1000)
    charged: int = 0  # everything the tariff has charged, in price units


class GasMeter(ElectricityMeter):
    """A GSME. It shares the ESME's GBCS security pipeline; its payloads are GBZ."""

    def __init__(
        self,
        eui: Eui64,
        keystore: Keystore,
        clock: Clock,
        *,
        acb: RemoteParty,
        remote_parties: list[RemoteParty],
        on_security_event: Callable[[SecurityEvent], None] | None = None,
    ) -> None:
        super().__init__(eui, keystore, clock, acb=acb, remote_parties=remote_parties,
                         on_security_event=on_security_event)
        self.gas = GasState()
        self.energy = EnergyLedger()
        self.mirror_pushes = 0
        self._serving = ""
        self._cluster = self._command = 0
        self._publication: GasTariff | None = None

    def _serves(self, code: int, role: TrustAnchorRole) -> bool:
        spec = use_case(code)
        return spec is not None and spec.target is Target.GSME and Role(role) in spec.roles

    def receive(self, wire: bytes) -> bytes | None:
        spec = use_case(parse_code(wire))
        self.energy.message_exchange(critical=bool(spec and spec.critical),
                                     encrypt=bool(spec and spec.name in _SENSITIVE))
        return super().receive(wire)

    # --- consumption and the half-hour / daily cycle ------------------------------------------

    def consume(self, active_wh: int, reactive_varh: int = 0) -> None:
        """Gas flows only with the valve open; ``active_wh`` is litres here. What flows is
        priced with the tariff in force and debited from the meter balance in prepayment
        mode (added to the bill to date in credit mode)."""
        self._activate_due_tariff()
        if self.gas.valve is not ValveState.ON or active_wh <= 0:
            return
        self.gas.volume_m3_thousandths += active_wh
        tariff = self.gas.tariff
        if tariff is None:
            return
        cost = 0
        for _ in range(active_wh):  # a litre at a time: a block boundary may fall inside
            cost += tariff.price_now()
            tariff.litres_in_period += 1
        self._charge(cost, per_litre=True)

    def _charge(self, amount: int, *, per_litre: bool) -> None:
        gas = self.gas
        if per_litre:  # prices are per m3: amount is in price-units per litre x 1000
            amount += gas.cost_remainder
            amount, gas.cost_remainder = divmod(amount, 1000)
        gas.charged += amount
        if gas.payment_mode_prepayment:
            gas.meter_balance -= amount
            if gas.meter_balance < gas.disablement_threshold and gas.valve is ValveState.ON:
                self.energy.spend(Operation.VALVE)
                gas.valve = ValveState.OFF  # out of credit: supply disabled
        else:
            gas.bill_to_date += amount

    def _activate_due_tariff(self) -> None:
        pending = self.gas.pending_tariff
        if pending is not None and zcl_time(self._clock.now()) >= pending.starts:
            self.gas.tariff, self.gas.pending_tariff = pending, None

    def end_of_half_hour(self) -> None:
        self.gas.samples.append((self._clock.now(), self.gas.volume_m3_thousandths))
        del self.gas.samples[: -(48 * 31)]

    def end_of_day(self) -> None:
        self._activate_due_tariff()
        if self.gas.tariff is not None:
            self._charge(self.gas.tariff.standing_charge, per_litre=False)
        self.gas.snapshots.append((self._clock.now(), self.gas.volume_m3_thousandths))
        del self.gas.snapshots[:-31]

    def meter_time(self) -> dt.datetime:
        """The gas meter's own clock: the hub's time plus any drift since its last GCS28."""
        return self._clock.now() + self.gas.clock_offset

    def drift(self, offset: dt.timedelta) -> None:
        """The meter's clock wanders (battery change, crystal): its time is doubtful until
        the next clock synchronisation."""
        self.gas.clock_offset = offset
        self.gas.clock_synchronised = abs(offset) <= CLOCK_AGREEMENT

    def mirror_snapshot(self) -> bytes:
        """What the GSME pushes to the gas proxy: its Metering attributes (ZCL records)."""
        self.energy.spend(Operation.WAKE)
        self.energy.spend(Operation.AES, 4)
        self.energy.spend(Operation.RADIO_TX)
        self.energy.spend(Operation.RADIO_RX)  # the hub's acknowledgement
        self.mirror_pushes += 1
        records = tuple(
            AttributeRecord(attr, STATUS_SUCCESS, self._attribute(METERING, attr))
            for attr in (0x0000, 0x0014, 0x0300, 0x0301, 0x0302)
        )
        return ReadAttributesResponse(records).encode()

    # --- ZCL ----------------------------------------------------------------------------------

    def _attribute(self, cluster: int, attr: int) -> ZclValue | None:
        gas = self.gas
        table: dict[tuple[int, int], ZclValue] = {
            (METERING, 0x0000): ZclValue(ZclType.UINT48, gas.volume_m3_thousandths),
            (METERING, 0x0014): ZclValue(ZclType.ENUM8, int(gas.valve)),
            (METERING, 0x0205): ZclValue(ZclType.UINT16, 100),  # battery percentage-ish
            (METERING, 0x0300): ZclValue(ZclType.ENUM8, 1),  # unit: m3
            (METERING, 0x0301): ZclValue(ZclType.UINT24, 1),  # multiplier
            (METERING, 0x0302): ZclValue(ZclType.UINT24, 1000),  # divisor
            (PREPAYMENT, 0x0000): ZclValue(ZclType.INT32, gas.meter_balance),
        }
        return table.get((cluster, attr))

    def _execute(self, party: RemoteParty, counter: int, code: int, payload: bytes) -> bytes:
        spec = use_case(code)
        assert spec is not None
        self._serving = spec.name
        if spec.name in der_cases.METER_CASES or spec.name == "GCS28":
            if spec.name == "GCS28":
                der_answer = self._synchronise_clock(payload)
            else:
                der_answer = der_cases.serve_meter(spec.name, payload, self.joined, self.firmware)
            if der_answer.executed:
                self.commands_executed += 1
            return self._answer(party, counter, code, spec.critical, der_answer.payload)
        try:
            request = decode_gbz(payload)
        except GbcsError:
            request = GbzPayload(0)
        answers: list[GbzComponent] = []
        z = self._keystore.derive_shared_secret(KA_LABEL, party.key_agreement_key)
        key = security.encryption_key(z, self.eui.value, counter, party.eui.value)
        self._serving = spec.name
        for component in request.components:
            answers.extend(self._serve(component, key))
        if not answers:
            answers = [GbzComponent(CONTROL_LAST, METERING, ZclHeader(FC_PROFILE_RESPONSE, 0, 0x0B),
                                    DefaultResponse(0, STATUS_INVALID_FIELD))]
        else:
            self.commands_executed += 1
        last = answers[-1]
        answers[-1] = GbzComponent(last.control | CONTROL_LAST, last.cluster_id, last.zcl,
                                   last.body, last.from_date_time)
        body = GbzPayload(len(answers), tuple(answers)).encode()
        return self._answer(party, counter, code, spec.critical, body)

    def _answer(self, party: RemoteParty, counter: int, code: int, critical: bool,
                body: bytes) -> bytes:
        if not critical and self._serving in COPY_READS:
            status = CLOCK_RELIABLE if self.gas.clock_synchronised else CLOCK_DOUBTFUL
            z = self._keystore.derive_shared_secret(KA_LABEL, party.key_agreement_key)
            return build_response(device=self.eui.value, recipient=party.eui.value,
                                  counter=counter, message_code=code, payload=body, z=z,
                                  date_time=stamped_date_time(self.meter_time(), status)).wire()
        if not critical:
            return self._respond(party, counter, code, body)
        response = build_general_signing(cra_flag=CraFlag.RESPONSE, originator=self.eui.value,
                                         recipient=party.eui.value, counter=counter,
                                         message_code=code, payload=body)
        return sign_message(response, keystore=self._keystore, label=DS_LABEL).wire()

    def _synchronise_clock(self, payload: bytes) -> der_cases.DerAnswer:
        """GCS28: set the clock from the hub's time if now is inside the validity window."""
        try:
            start_node, end_node = decode_der(payload).children
            start, end = der_cases.parse_time(start_node), der_cases.parse_time(end_node)
        except (GbcsError, ValueError):
            return der_cases.DerAnswer(der_cases.der_integer(der_cases.RESULT_FAILURE).encode(),
                                       False)
        hub_time = self._clock.now()
        inside = start <= hub_time <= end
        if inside:
            self.gas.clock_offset = dt.timedelta(0)  # the hub's time is the reference
            self.gas.clock_synchronised = True
        result = der_cases.RESULT_SUCCESS if inside else der_cases.RESULT_FAILURE
        answer = der_cases.der_sequence(
            der_cases.der_time(hub_time + self.gas.clock_offset), der_cases.der_integer(result))
        return der_cases.DerAnswer(answer.encode(), inside)

    def _serve(self, component: GbzComponent, key: bytes) -> list[GbzComponent]:
        seq, cluster, cmd = component.zcl.sequence, component.cluster_id, component.zcl.command_id
        body = component.body

        # Answers go the other way: a client-to-server request gets a server-to-client answer.
        answer_direction = 0x00 if component.zcl.server_to_client else FC_PROFILE_RESPONSE

        def default(status: int) -> GbzComponent:
            return GbzComponent(0, cluster, ZclHeader(answer_direction, seq, 0x0B),
                                DefaultResponse(cmd, status))

        def sealed(fc: int, command: int, plaintext: bytes) -> GbzComponent:
            if self._serving == "GCS18":  # network data answers ask for a default response
                fc &= ~0x10
            self.energy.spend(Operation.AES, 2 + len(plaintext) // 16)
            block = security.seal_sensitive(key, self.eui.value, plaintext)
            return GbzComponent(CONTROL_ENCRYPTED, cluster, ZclHeader(fc, seq, command),
                                EncryptedZcl(0, 0, block[5:]))

        if isinstance(body, ReadAttributes):
            records = tuple(
                AttributeRecord(a, STATUS_SUCCESS, v) if (v := self._attribute(cluster, a))
                else AttributeRecord(a, STATUS_UNSUPPORTED_ATTRIBUTE)
                for a in body.attribute_ids
            )
            response = ReadAttributesResponse(records)
            if cluster == METERING and 0x0000 in body.attribute_ids:  # consumption: sensitive
                return [sealed(FC_PROFILE_RESPONSE_NO_DEFAULT, 0x01, response.encode())]
            return [GbzComponent(0, cluster, ZclHeader(FC_PROFILE_RESPONSE, seq, 0x01), response)]
        if isinstance(body, WriteAttributes):
            return [GbzComponent(0, cluster, ZclHeader(FC_PROFILE_RESPONSE, seq, 0x04),
                                 WriteAttributesResponse())]
        if not isinstance(body, ClusterPayload):
            return [default(STATUS_UNSUP_COMMAND)]
        data = body.data
        handler = _HANDLERS.get((cluster, cmd))
        if handler is None:
            return [default(STATUS_UNSUP_COMMAND)]
        self._cluster, self._command = cluster, cmd
        try:
            result = handler(self, data)
        except (struct.error, ValueError, IndexError):
            return [default(STATUS_INVALID_FIELD)]
        if isinstance(result, int):
            return [default(result)]
        command, plaintext, sensitive = result
        if sensitive:
            return [sealed(FC_CLUSTER_RESPONSE_NO_DEFAULT, command, plaintext)]
        # The supply status response asks for a default response; the others do not.
        fc = FC_CLUSTER_RESPONSE if command == 0x0C else FC_CLUSTER_RESPONSE_NO_DEFAULT
        return [GbzComponent(0, cluster, ZclHeader(fc, seq, command), ClusterPayload(plaintext))]

    # cluster command handlers: return a ZCL status, or (command id, payload, sensitive)

    def _change_supply(self, data: bytes) -> int | tuple[int, bytes, bool]:
        """Metering 0x0B Change Supply (GCS32 off, GCS39 arm) -> 0x0C Supply Status Response."""
        provider, event, _request_time, _implementation, proposed, _control = struct.unpack(
            "<IIIIBB", data[:18])
        if proposed not in (0, 1):
            return STATUS_INVALID_FIELD
        target = ValveState.OFF if proposed == 0 else ValveState.ARMED
        if target is not self.gas.valve:
            self.energy.spend(Operation.VALVE)
        self.gas.valve = target
        now = zcl_time(self._clock.now())
        return 0x0C, struct.pack("<IIIB", provider, event, now, int(target)), False

    def _change_payment_mode(self, data: bytes) -> tuple[int, bytes, bool]:
        """Prepayment 0x06 Change Payment Mode -> 0x02 Change Payment Mode Response."""
        _provider, _event, _time, config = struct.unpack("<IIIH", data[:14])
        self.gas.payment_mode_prepayment = bool(config & 0x0002)  # bit 1: prepayment enabled
        if len(data) >= 18:  # the cut-off value: the disablement threshold (ZCL int32)
            self.gas.disablement_threshold = struct.unpack("<i", data[14:18])[0]
        payload = struct.pack("<BIII", 1, 0, self.gas.emergency_credit_limit,
                              self.gas.emergency_credit_threshold)
        return 0x02, payload, False

    def _credit_adjustment(self, data: bytes) -> int:
        """Prepayment 0x05 Credit Adjustment: GCS40a adjusts and GCS40b sets the prepayment
        meter balance (types 0, 1); GCS40d sets and GCS40c adjusts the credit-mode balance,
        the Metering cluster's bill to date (types 2, 3)."""
        _event, _start, kind, value = struct.unpack("<IIBi", data[:13])
        if kind == 0:
            self.gas.meter_balance += value
        elif kind == 1:
            self.gas.meter_balance = value
        elif kind == 2:
            self.gas.bill_to_date = value
        elif kind == 3:
            self.gas.bill_to_date += value
        else:
            return STATUS_INVALID_FIELD
        return STATUS_SUCCESS

    def _emergency_credit_setup(self, data: bytes) -> int:
        """Prepayment 0x03 Emergency Credit Setup (GCS05): limit and threshold."""
        _event, _start, limit, threshold = struct.unpack("<IIII", data[:16])
        self.gas.emergency_credit_limit, self.gas.emergency_credit_threshold = limit, threshold
        self.gas.prepayment_configs += 1
        return STATUS_SUCCESS

    def _prepayment_setting(self, data: bytes) -> int:
        """Other prepayment settings GCS05 carries (low-credit warning, cut-off, debt): kept."""
        self.gas.prepayment_settings.append(bytes(data))
        self.gas.prepayment_configs += 1
        return STATUS_SUCCESS

    def _get_sampled_data(self, data: bytes) -> int | tuple[int, bytes, bool]:
        """Metering 0x08 Get Sampled Data (GCS17 profile, GCS18 network data) -> 0x07."""
        sample_id, earliest, sample_type, count = struct.unpack("<HIBH", data[:9])
        start = GBCS_EPOCH + dt.timedelta(seconds=earliest)
        samples = [v for at, v in self.gas.samples if at >= start][:count]
        if not samples:
            return STATUS_NOT_FOUND
        out = struct.pack("<HIBHH", sample_id, earliest, sample_type, 1800, len(samples))
        out += b"".join((v & 0xFFFFFF).to_bytes(3, "little") for v in samples)
        return 0x07, out, True

    def _get_snapshot(self, data: bytes) -> int | tuple[int, bytes, bool]:
        """Metering 0x06 Get Snapshot (GCS16a daily read log) -> 0x06 Publish Snapshot."""
        start, end, offset, _cause = struct.unpack("<IIBI", data[:13])
        window = [(at, v) for at, v in self.gas.snapshots if start <= zcl_time(at) <= end]
        if offset >= len(window):
            return STATUS_NOT_FOUND
        at, value = window[-1 - offset]
        payload = struct.pack("<IIBBBIB", offset, zcl_time(at), 1, 0, 1, 0x00000001, 0)
        payload += value.to_bytes(6, "little")
        return 0x06, payload, True

    def _tariff(self, data: bytes) -> int:
        """Price / Calendar publications (GCS01a/b): each kept as published; the Price
        cluster's tariff information, block thresholds and price matrix make the tariff the
        meter prices its gas with (from their start time; a start of FFFFFFFF/FFFFFFFE
        cancels a future-dated one)."""
        self.gas.tariff_publications += 1
        self.gas.tariff_tables[(self._cluster, self._command)] = bytes(data)
        if self._cluster != PRICE:
            return STATUS_SUCCESS
        if self._command == PUBLISH_TARIFF_INFORMATION:
            return self._tariff_information(data)
        if self._command == PUBLISH_BLOCK_THRESHOLDS:
            return self._block_thresholds(data)
        if self._command == PUBLISH_PRICE_MATRIX:
            return self._price_matrix(data)
        return STATUS_SUCCESS

    def _publishing(self) -> GasTariff:
        """The tariff being published: a copy of the one in force, changed command by command."""
        if self._publication is None:
            current = self.gas.tariff or GasTariff()
            self._publication = dataclasses.replace(
                current, tou_prices=dict(current.tou_prices),
                block_prices=list(current.block_prices),
                thresholds_litres=list(current.thresholds_litres), litres_in_period=0)
        return self._publication

    def _tariff_information(self, data: bytes) -> int:
        # provider(4) issuer event(4) tariff id(4) start(4) type(1) label(1+n) tiers(1)
        # thresholds(1) unit(1) currency(2) trailing digit(1) standing charge(4) tier block
        # mode(1) threshold multiplier(3) divisor(3)
        if len(data) < 18:
            return STATUS_INVALID_FIELD
        start = int.from_bytes(data[12:16], "little")
        scheme, at = data[16], 18 + data[17]
        if len(data) < at + 17:
            return STATUS_INVALID_FIELD
        digits = data[at + 5] >> 4
        standing = int.from_bytes(data[at + 6:at + 10], "little")
        multiplier = int.from_bytes(data[at + 11:at + 14], "little")
        divisor = int.from_bytes(data[at + 14:at + 17], "little")
        if divisor == 0:
            return STATUS_INVALID_FIELD
        tariff = self._publishing()
        tariff.block = scheme == BLOCK_SCHEME
        tariff.standing_charge, tariff.price_digits = standing, digits
        tariff.threshold_multiplier, tariff.threshold_divisor = multiplier, divisor
        tariff.starts = start
        return STATUS_SUCCESS

    def _block_thresholds(self, data: bytes) -> int:
        if len(data) < 20 or len(data) < 20 + 6 * (data[19] & 0x0F):
            return STATUS_INVALID_FIELD
        count = data[19] & 0x0F
        raw = [int.from_bytes(data[20 + 6 * i:26 + 6 * i], "little") for i in range(count)]
        tariff = self._publishing()
        # raw x multiplier / divisor m3, in litres
        tariff.thresholds_litres = [
            r * tariff.threshold_multiplier * 1000 // tariff.threshold_divisor for r in raw]
        return STATUS_SUCCESS

    def _price_matrix(self, data: bytes) -> int:
        start = int.from_bytes(data[8:12], "little")
        entries = data[19:]
        if len(data) < 19 or len(entries) % 5:
            return STATUS_INVALID_FIELD
        tariff = self._publishing()
        self._publication = None
        prices = {entries[i]: int.from_bytes(entries[i + 1:i + 5], "little")
                  for i in range(0, len(entries), 5)}
        if tariff.block:
            tariff.block_prices = [prices[k] for k in sorted(prices)]
        else:
            tariff.tou_prices = prices
        if start in START_CANCEL or tariff.starts in START_CANCEL:
            self.gas.pending_tariff = None
            return STATUS_SUCCESS
        tariff.starts = max(tariff.starts, start)
        if tariff.starts == START_NOW or tariff.starts <= zcl_time(self._clock.now()):
            self.gas.tariff = tariff
        else:
            self.gas.pending_tariff = tariff
        return STATUS_SUCCESS

    def _alert_config(self, _data: bytes) -> int:
        self.gas.alert_configs += 1
        return STATUS_SUCCESS


_SENSITIVE = frozenset({"GCS13a", "GCS16a", "GCS17", "GCS18"})

_Handler = Callable[[GasMeter, bytes], "int | tuple[int, bytes, bool]"]
_HANDLERS: dict[tuple[int, int], _Handler] = {
    (METERING, 0x0B): GasMeter._change_supply,
    (METERING, 0x08): GasMeter._get_sampled_data,
    (METERING, 0x06): GasMeter._get_snapshot,
    (PREPAYMENT, 0x06): GasMeter._change_payment_mode,
    (PREPAYMENT, 0x05): GasMeter._credit_adjustment,
    (PREPAYMENT, 0x03): GasMeter._emergency_credit_setup,
    (PREPAYMENT, 0x09): GasMeter._prepayment_setting,
    (PREPAYMENT, 0x0B): GasMeter._prepayment_setting,
    (PREPAYMENT, 0x0C): GasMeter._prepayment_setting,
    **{(PRICE, cmd): GasMeter._tariff for cmd in range(0x00, 0x20)},
    **{(CALENDAR, cmd): GasMeter._tariff for cmd in range(0x00, 0x10)},
    **{(DEVICE_MANAGEMENT, cmd): GasMeter._alert_config for cmd in range(0x00, 0x10)},
}


def parse_code(wire: bytes) -> int:
    """The message code of a GBCS message, or -1 if it does not frame."""
    try:
        return decode_message(wire).message_code
    except GbcsError:
        return -1

"""What an electricity meter knows and does, as a COSEM object model.

The :class:`EsmeModel` keeps the meter's state in typed objects (registers, tariff, credit,
load switch, logs, clock, alert configuration) and publishes it as the COSEM objects the GBCS
use cases address, so a command is served by :class:`~smarthydra.premises.cosem.CosemServer`
and the device state changes as the use case says:

- ECS01a-d tariffs and prices: activity calendar, special days, register monitors, charges
  (standing charge and unit prices are interpreted; the tables are kept as sent);
- ECS02 / ECS03 payment mode (credit / prepayment, with the disablement threshold);
- ECS04a / ECS04b meter balance adjustment and reset of the credit registers;
- CS01a top-up through the token gateway and PECS01 top-up from the PPMID (UTRN, its MAC
  checked by an injected verifier; the anti-replay counter cache and the credit are then
  written together, see :meth:`EsmeModel.redeem_utrn`);
- ECS42 / ECS43 / ECS44 load switch close / open / arm (disconnect script table);
- ECS45 supply status (disconnect control ``control_state``);
- ECS17b, ECS21a, ECS22b protected reads (registers, daily log, half-hourly profile);
- ECS23 voltage data; ECS35a/b event and security logs; ECS25 alert filters; ECS70 clock.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from smarthydra.clock import Clock
from smarthydra.gbcs.axdr import BitString, CompactArray, Data, DataType, structure
from smarthydra.gbcs.utrn import (
    ALERT_UTRN_MANUAL_ENTRY_SUSPENDED,
    MESSAGE_CODE_PECS01,
    UtrnCounterCache,
    UtrnError,
    UtrnExceedsMaxCredit,
    UtrnLockedOut,
)
from smarthydra.gbcs.xdlms import DataAccessResult
from smarthydra.premises.cosem import (
    CosemError,
    CosemServer,
    StoredValue,
    compact_array,
    obis,
    require_type,
)

GBCS_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
HALF_HOUR = dt.timedelta(minutes=30)
TOU_REGISTERS = 48
BLOCKS = 4
BLOCK_BANDS = 8  # block registers are kept per block and per TOU band


def gbcs_seconds(moment: dt.datetime) -> int:
    """GBCS profile time stamps: UTC seconds since 2000-01-01."""
    return int((moment - GBCS_EPOCH).total_seconds())


def cosem_time(moment: dt.datetime) -> bytes:
    return (
        moment.year.to_bytes(2, "big")
        + bytes([moment.month, moment.day, 0xFF, moment.hour, moment.minute, moment.second, 0])
        + b"\x80\x00\x00"
    )


def parse_cosem_time(raw: bytes) -> dt.datetime | None:
    """A COSEM date-time octet string; None when the date is not specified (all FF)."""
    if len(raw) != 12:
        raise CosemError(DataAccessResult.TYPE_UNMATCHED, "a date-time is 12 bytes")
    year = int.from_bytes(raw[:2], "big")
    if year == 0xFFFF or raw[2] == 0xFF or raw[3] == 0xFF:
        return None
    try:
        return dt.datetime(year, raw[2], raw[3], raw[5] % 24, raw[6] % 60, raw[7] % 60,
                           tzinfo=dt.UTC)
    except ValueError:
        raise CosemError(DataAccessResult.TYPE_UNMATCHED, f"bad date-time {raw.hex()}") from None


class SupplyState(enum.Enum):
    ENABLED = "enabled"  # load switch closed
    DISABLED = "disabled"  # load switch open
    ARMED = "armed"  # open, consumer may close it

    @property
    def control_state(self) -> int:
        """DLMS disconnect-control control_state: 0 disconnected, 1 connected, 2 ready."""
        return {SupplyState.DISABLED: 0, SupplyState.ENABLED: 1, SupplyState.ARMED: 2}[self]


class PaymentMode(enum.Enum):
    CREDIT = 1
    PREPAYMENT = 2


# Disconnect script table scripts (GBCS): what ECS42/43/44 execute.
SCRIPT_CLOSE = 51
SCRIPT_OPEN = 52
SCRIPT_ARM = 54


@dataclass
class MeterRegisters:
    active_import_wh: int = 0
    reactive_import_varh: int = 0
    active_export_wh: int = 0
    reactive_export_varh: int = 0
    tou_wh: list[int] = field(default_factory=lambda: [0] * TOU_REGISTERS)
    block_wh: list[list[int]] = field(
        default_factory=lambda: [[0] * BLOCK_BANDS for _ in range(BLOCKS)]
    )


@dataclass
class Tariff:
    """Prices as the meter applies them (pence x 10^-price_scale), and the raw tables."""

    standing_charge: int = 20000  # per day, at price_scale
    price_scale: int = -5  # prices are in GBP x 10^price_scale
    tou_prices: list[int] = field(default_factory=lambda: [15000] * TOU_REGISTERS)
    # block prices, per block and TOU band (the charge table's indices A1..D8)
    block_prices: list[list[int]] = field(
        default_factory=lambda: [[0] * BLOCK_BANDS for _ in range(BLOCKS)]
    )
    secondary_tou_prices: list[int] = field(default_factory=lambda: [0] * TOU_REGISTERS)
    # per TOU band: the consumption (Wh, in the block period) where each next block starts
    block_thresholds_wh: list[list[int]] = field(
        default_factory=lambda: [[] for _ in range(BLOCK_BANDS)]
    )
    tou_switching: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)])
    updates: int = 0

    def rate_at(self, moment: dt.datetime) -> int:
        """The TOU register in force: the last switching time (minute of day) not after now."""
        minute = moment.hour * 60 + moment.minute
        current = 0
        for start, register in sorted(self.tou_switching):
            if start <= minute:
                current = register
        return current % TOU_REGISTERS

    def to_gbp(self, amount: int) -> float:
        return amount * 10.0**self.price_scale


@dataclass
class Credit:
    """Prepayment credit, in pence x 10^-5 like the prices (the RTDS uses that scale)."""

    mode: PaymentMode = PaymentMode.CREDIT
    meter_balance: int = 0
    emergency_credit_limit: int = 500_000  # £5
    emergency_credit_balance: int = 0
    emergency_credit_active: bool = False
    debt: list[int] = field(default_factory=lambda: [0, 0, 0])
    debt_recovery_per_day: list[int] = field(default_factory=lambda: [0, 0, 0])
    disablement_threshold: int = 0
    top_ups: list[tuple[dt.datetime, int]] = field(default_factory=list)
    # UTRN anti-replay memory: kept with the credit, written in the same step as a top-up
    utrn_counters: UtrnCounterCache = field(default_factory=UtrnCounterCache)
    max_credit_threshold: int | None = None  # a top-up may not take the balance above it

    @property
    def available(self) -> int:
        return self.meter_balance + self.emergency_credit_balance


@dataclass(frozen=True)
class LogEntry:
    at: dt.datetime
    code: int
    detail: bytes = b""


@dataclass(frozen=True)
class DailyRead:
    at: dt.datetime
    active_import_wh: int
    tou_wh: tuple[int, ...]
    block_wh: tuple[tuple[int, ...], ...]
    meter_balance: int


@dataclass(frozen=True)
class HalfHour:
    at: dt.datetime
    active_import_wh: int  # register value at the end of the half hour
    reactive_import_varh: int
    active_export_wh: int


# Event codes the meter logs (GBCS event and alert codes).
EVENT_SUPPLY_DISCONNECTED = 0x8F31
EVENT_SUPPLY_CONNECTED = 0x8F32
EVENT_SUPPLY_ARMED = 0x8F33
EVENT_CREDIT_BELOW_THRESHOLD = 0x8F1C
EVENT_TOP_UP = 0x8F2D
EVENT_PAYMENT_MODE = 0x8F30
EVENT_TARIFF_UPDATED = 0x8F66
EVENT_CLOCK_ADJUSTED = 0x8F1A
EVENT_ALERT_CONFIG = 0x8F41

# Security events (ECS35b reads them): this project's codes for the meter's drop reasons.
EVENT_SECURITY_OTHER = 0x8F0F
SECURITY_EVENT_CODES = {
    "MALFORMED": 0x8F01,
    "NOT_FOR_THIS_DEVICE": 0x8F02,
    "NOT_A_COMMAND": 0x8F03,
    "MAC_INVALID": 0x8F04,
    "UNKNOWN_ORIGINATOR": 0x8F05,
    "REPLAY": 0x8F06,
    "SIGNATURE_MISSING": 0x8F07,
    "SIGNATURE_INVALID": 0x8F08,
}
EVENT_LOG_SIZE = 100
# Events that also raise an alert to the supplier: (alert filter group, bit in register 11).
ALERTING_EVENTS: dict[int, tuple[str, int]] = {
    EVENT_SUPPLY_DISCONNECTED: ("0-30", 0),
    EVENT_CREDIT_BELOW_THRESHOLD: ("0-30", 1),
    EVENT_SUPPLY_ARMED: ("0-30", 2),
}

#: UTRN digits -> (UTRN counter, credit value); raises UtrnError if not authentic
UtrnVerifier = Callable[[bytes, dt.datetime], tuple[int, int]]


# Manual UTRN entry lockout (alerts 81C4 / 81C5): the 16-bit UTRN MAC must not be guessable
# at the keypad. The count and period are this project's choice, not GBCS values.
UTRN_LOCKOUT_FAILURES = 5
UTRN_LOCKOUT = dt.timedelta(hours=24)


class PowerCut(Exception):
    """Raised by a test's fault hook: the meter loses power at that point."""


class EsmeModel:
    def __init__(
        self,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        utrn_verifier: UtrnVerifier | None = None,
        max_randomised_offset_s: int = 1800,
    ) -> None:
        self.clock = clock
        self.rng = rng or random.Random(0)
        self.utrn_verifier = utrn_verifier
        # Fault injection for tests: called with "before-commit" / "after-commit" around the
        # top-up write; raising PowerCut there models a power cut at that instant.
        self.power_cut: Callable[[str], None] | None = None
        self.utrn_manual_failures = 0
        self.utrn_locked_until: dt.datetime | None = None
        self.registers = MeterRegisters()
        self.tariff = Tariff()
        self.credit = Credit()
        self.supply = SupplyState.ENABLED
        self.max_randomised_offset_s = max_randomised_offset_s
        self.pending_close_at: dt.datetime | None = None
        self.max_demand_w = 0
        self.max_demand_at: dt.datetime | None = None
        self.voltage_samples: list[tuple[dt.datetime, int]] = []
        self.sag_count = 0
        self.swell_count = 0
        self.event_log: list[LogEntry] = []
        self.security_events: list[LogEntry] = []
        self.daily_log: list[DailyRead] = []
        self.profile: list[HalfHour] = []
        self.clock_offset = dt.timedelta(0)
        self.clock_base = 1
        self.preset: tuple[dt.datetime, dt.datetime, dt.datetime] | None = None
        self.alert_filters: dict[bytes, BitString] = {}
        self.outbox: list[tuple[int, dt.datetime]] = []  # alerts for the meter to send
        self.scheduled: list[tuple[dt.datetime, str, Callable[[], None]]] = []
        self.block_period_wh = [0] * BLOCK_BANDS
        self.server = CosemServer()
        self._register_objects()

    # --- time ------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return self.clock.now() + self.clock_offset

    def log_event(self, code: int, detail: bytes = b"") -> None:
        self.event_log.append(LogEntry(self.now(), code, detail))
        del self.event_log[:-EVENT_LOG_SIZE]
        group, bit = ALERTING_EVENTS.get(code, (None, 0))
        if group is not None and self.alert_enabled(group, 11, bit):
            self.outbox.append((code, self.now()))

    def log_security_event(self, reason: str) -> None:
        """A command the meter dropped (bad MAC, replay, unknown originator, ...)."""
        code = SECURITY_EVENT_CODES.get(reason, EVENT_SECURITY_OTHER)
        self.security_events.append(LogEntry(self.now(), code))
        del self.security_events[:-EVENT_LOG_SIZE]

    # --- energy ----------------------------------------------------------------------------

    def consume(self, active_wh: int, reactive_varh: int = 0, export_wh: int = 0,
                minutes: int = 30) -> None:
        """Energy over an interval; flows only while the load switch is closed."""
        self._apply_pending_close()
        if self.scheduled:
            self.apply_due()
        if self.supply is not SupplyState.ENABLED:
            return
        regs = self.registers
        regs.active_import_wh += active_wh
        regs.reactive_import_varh += reactive_varh
        regs.active_export_wh += export_wh
        now = self.now()
        band = self.tariff.rate_at(now)
        regs.tou_wh[band] += active_wh
        block = self._block_of(band % BLOCK_BANDS)
        regs.block_wh[block][band % BLOCK_BANDS] += active_wh
        self.block_period_wh[band % BLOCK_BANDS] += active_wh
        if minutes > 0:
            demand = active_wh * 60 // minutes
            if demand > self.max_demand_w:
                self.max_demand_w, self.max_demand_at = demand, now
        self._charge(active_wh, band, block)

    def _block_of(self, band: int) -> int:
        """The block this band's consumption in the block period has reached."""
        used = self.block_period_wh[band]
        for index, threshold in enumerate(self.tariff.block_thresholds_wh[band]):
            if used < threshold:
                return min(index, BLOCKS - 1)
        return min(len(self.tariff.block_thresholds_wh[band]), BLOCKS - 1)

    def _charge(self, active_wh: int, band: int, block: int) -> None:
        if self.credit.mode is not PaymentMode.PREPAYMENT:
            return
        price = self.tariff.tou_prices[band] + self.tariff.block_prices[block][band % BLOCK_BANDS]
        self._debit(active_wh * price // 1000)

    def _debit(self, amount: int) -> None:
        credit = self.credit
        credit.meter_balance -= amount
        if credit.meter_balance < 0 and credit.emergency_credit_active:
            take = min(-credit.meter_balance, credit.emergency_credit_balance)
            credit.emergency_credit_balance -= take
            credit.meter_balance += take
        if credit.available <= credit.disablement_threshold and self.supply is SupplyState.ENABLED:
            self.log_event(EVENT_CREDIT_BELOW_THRESHOLD)
            self._set_supply(SupplyState.DISABLED)

    def end_of_day(self) -> None:
        """Daily charges (standing charge, debt recovery) and the daily read log."""
        if self.credit.mode is PaymentMode.PREPAYMENT:
            self._debit(self.tariff.standing_charge)
            for index, rate in enumerate(self.credit.debt_recovery_per_day):
                recovered = min(rate, self.credit.debt[index])
                self.credit.debt[index] -= recovered
                self._debit(recovered)
        regs = self.registers
        if self.now().day == 1:  # the block period is the calendar month
            self.block_period_wh = [0] * BLOCK_BANDS
        self.daily_log.append(
            DailyRead(self.now(), regs.active_import_wh, tuple(regs.tou_wh),
                      tuple(tuple(b) for b in regs.block_wh), self.credit.meter_balance)
        )
        del self.daily_log[:-31]

    def end_of_half_hour(self, voltage_v: int = 240) -> None:
        regs = self.registers
        self.profile.append(
            HalfHour(self.now(), regs.active_import_wh, regs.reactive_import_varh,
                     regs.active_export_wh)
        )
        del self.profile[:-(13 * 48)]  # GBCS keeps 13 months of... we keep 13 days
        self.voltage_samples.append((self.now(), voltage_v))
        del self.voltage_samples[:-(48 * 4)]
        if voltage_v < 216:
            self.sag_count += 1
        elif voltage_v > 253:
            self.swell_count += 1

    # --- credit ----------------------------------------------------------------------------

    def top_up(self, amount: int) -> None:
        self.credit.meter_balance += amount
        self.credit.top_ups.append((self.now(), amount))
        self.log_event(EVENT_TOP_UP, amount.to_bytes(4, "big", signed=True))
        if self.supply is SupplyState.DISABLED and self.credit.available > (
            self.credit.disablement_threshold
        ):
            self._set_supply(SupplyState.ARMED)

    def activate_emergency_credit(self) -> bool:
        """The consumer accepts emergency credit (PPMID / meter button)."""
        credit = self.credit
        if credit.mode is not PaymentMode.PREPAYMENT or credit.emergency_credit_active:
            return False
        credit.emergency_credit_active = True
        credit.emergency_credit_balance = credit.emergency_credit_limit
        if self.supply is SupplyState.DISABLED:
            self._set_supply(SupplyState.ARMED)
        return True

    # --- load switch -----------------------------------------------------------------------

    def _set_supply(self, state: SupplyState) -> None:
        if state is self.supply:
            return
        self.supply = state
        self.log_event({
            SupplyState.DISABLED: EVENT_SUPPLY_DISCONNECTED,
            SupplyState.ENABLED: EVENT_SUPPLY_CONNECTED,
            SupplyState.ARMED: EVENT_SUPPLY_ARMED,
        }[state])

    def consumer_press_button(self) -> bool:
        """An armed meter closes its switch when the consumer asks."""
        if self.supply is SupplyState.ARMED:
            self._set_supply(SupplyState.ENABLED)
            return True
        return False

    def _apply_pending_close(self) -> None:
        if self.pending_close_at is not None and self.clock.now() >= self.pending_close_at:
            self.pending_close_at = None
            self._set_supply(SupplyState.ENABLED)

    def _execute_script(self, value: Data) -> None:
        require_type(value, DataType.LONG_UNSIGNED)
        script = value.value
        if script == SCRIPT_OPEN:
            self.pending_close_at = None
            self._set_supply(SupplyState.DISABLED)
        elif script == SCRIPT_ARM:
            self._set_supply(SupplyState.ARMED)
        elif script == SCRIPT_CLOSE:
            if self.credit.mode is PaymentMode.PREPAYMENT and self.credit.available <= (
                self.credit.disablement_threshold
            ):
                raise CosemError(DataAccessResult.TEMPORARY_FAILURE, "no credit")
            self._set_supply(SupplyState.ENABLED)
        else:
            raise CosemError(DataAccessResult.OBJECT_UNAVAILABLE, f"no script {script!r}")

    def restore_with_randomised_offset(self) -> dt.datetime:
        """After a supply interruption, close the switch at a random offset (load pick-up)."""
        offset = dt.timedelta(seconds=self.rng.randint(0, self.max_randomised_offset_s))
        self.pending_close_at = self.clock.now() + offset
        return self.pending_close_at

    # --- COSEM objects ---------------------------------------------------------------------

    def _register_objects(self) -> None:
        s = self.server
        # Tariff objects (ECS01a-d): kept as sent; charges interpreted.
        for name in ("0-0:13.0.0.255", "0-0:13.0.1.255"):
            for index in (7, 8, 9):
                s.value(20, name, index, Data(DataType.ARRAY, []))
            s.value(20, name, 10, Data(DataType.OCTET_STRING, bytes(12)))
        for name in ("0-1:11.0.0.255", "0-1:11.0.1.255"):
            s.value(11, name, 2, Data(DataType.ARRAY, []))
        # Block thresholds (register monitors, one per TOU band), active from the threshold
        # matrix activation time (0-0:94.44.128.29 attribute 6).
        thresholds = [s.value(21, f"0-0:16.1.{register}.255", 2, Data(DataType.ARRAY, []))
                      for register in range(11, 19)]
        threshold_when = s.value(9000, "0-0:94.44.128.29", 6, Data(DataType.OCTET_STRING, b""))
        s.attribute(9000, "0-0:94.44.128.29", 6, threshold_when.get,
                    self._activation_setter(threshold_when, "block thresholds",
                                            lambda: self._apply_thresholds(thresholds)))
        for name in ("0-0:94.44.2.0",):
            s.value(9000, name, 4, Data(DataType.BOOLEAN, False))
            s.value(9000, name, 6, Data(DataType.OCTET_STRING, b""))
        for name in ("0-0:63.1.1.255", "0-0:94.44.128.30"):
            s.value(9000, name, 6, Data(DataType.OCTET_STRING, b""))
        # Charges (unit charge passive, attribute 6) and the activity calendar (day profile
        # table passive, attribute 9) take effect at their activation time (attributes 7, 10).
        for charge in ("0-0:19.20.0.255", "0-0:19.20.4.255", "0-0:19.20.5.255"):
            passive = s.value(113, charge, 6, _EMPTY_CHARGE)
            s.attribute(113, charge, 6, passive.get, self._charge_setter(charge, passive))
            when = s.value(113, charge, 7, Data(DataType.OCTET_STRING, bytes(12)))
            s.attribute(113, charge, 7, when.get,
                        self._activation_setter(when, f"charge {charge}",
                                                self._charge_activation(charge, passive)))
        day_profiles = s.value(20, "0-0:13.0.0.255", 9, Data(DataType.ARRAY, []))
        calendar_when = s.value(20, "0-0:13.0.0.255", 10, Data(DataType.OCTET_STRING, bytes(12)))
        s.attribute(20, "0-0:13.0.0.255", 10, calendar_when.get,
                    self._activation_setter(calendar_when, "activity calendar",
                                            lambda: self._apply_day_profiles(day_profiles.value)))
        # Payment mode (ECS02/03) and credit (ECS04, CS01a).
        s.attribute(111, "0-1:19.0.0.255", 2, self._get_account_mode, self._set_account_mode)
        s.value(111, "0-1:19.0.0.255", 11, Data(DataType.ARRAY, []))
        s.value(111, "0-1:19.0.0.255", 13, Data(DataType.OCTET_STRING, bytes(12)))
        s.attribute(9000, "0-0:94.44.128.22", 4, self._get_threshold, self._set_threshold)
        s.value(9000, "0-0:94.44.128.22", 6, Data(DataType.OCTET_STRING, b""))
        for index in range(3):
            s.method(112, f"0-0:19.10.{index}.255", 1, self._credit_update(index))
            s.method(112, f"0-0:19.10.{index}.255", 2, self._credit_set(index))
            s.attribute(112, f"0-0:19.10.{index}.255", 2, self._credit_get(index))
        s.method(115, "0-0:19.40.0.255", 1, self._enter_token)
        # Prepayment configuration (ECS08): kept as sent, the thresholds it sets are stored
        # configuration; the emergency credit limit is 0-0:94.44.128.2 (interpreted below: the
        # DCC's SRV 2.1 transform puts EmergencyCreditLimit there, and the RTDS ECS08/ECS08a
        # carry their 300000 there; 0-0:94.44.128.13 holds a period, 604800 s, not a limit).
        for name, attrs in (
            ("0-0:94.44.128.12", ((4, Data(DataType.LONG_UNSIGNED, 0)),)),
            ("0-0:94.44.128.13", ((4, Data(DataType.DOUBLE_LONG, 0)),)),
            ("0-0:94.44.128.3", ((4, Data(DataType.DOUBLE_LONG, 0)),)),
            ("0-0:94.44.128.9", ((4, Data(DataType.DOUBLE_LONG, 0)),)),
            ("0-0:94.44.2.10", ((4, Data(DataType.DOUBLE_LONG, 0)),)),
            ("0-0:94.44.2.20", ((2, Data(DataType.DOUBLE_LONG, 0)),
                                (4, Data(DataType.DOUBLE_LONG, 0)))),
        ):
            for index, initial in attrs:
                s.value(9000, name, index, initial)
        for name in ("0-0:94.44.128.12", "0-0:94.44.128.13", "0-0:94.44.128.2", "0-0:94.44.128.3",
                     "0-0:94.44.128.9", "0-0:94.44.2.10", "0-0:94.44.2.20", "0-0:94.44.128.28",
                     "0-0:94.44.128.31"):
            s.value(9000, name, 6, Data(DataType.OCTET_STRING, b""))
        s.attribute(9000, "0-0:94.44.128.2", 4,
                    lambda _s, _d: Data(DataType.DOUBLE_LONG, self.credit.emergency_credit_limit),
                    self._set_emergency_credit_limit)
        s.value(11, "0-1:11.0.2.255", 2, Data(DataType.ARRAY, []))  # non-disablement days
        s.value(10, "0-1:12.0.1.255", 2, Data(DataType.ARRAY, []))
        # Load switch and supply status.
        s.method(9, "0-0:10.0.106.255", 1, self._execute_script)
        s.attribute(70, "0-0:96.3.10.255", 3,
                    lambda _s, _d: Data(DataType.ENUM, self.supply.control_state))
        # Clock (ECS70).
        s.attribute(8, "0-0:1.0.0.255", 2, lambda _s, _d: Data(DataType.OCTET_STRING,
                                                                 cosem_time(self.now())))
        s.attribute(8, "0-0:1.0.0.255", 4, lambda _s, _d: Data(DataType.UNSIGNED, 0))
        s.attribute(8, "0-0:1.0.0.255", 9, lambda _s, _d: Data(DataType.ENUM, self.clock_base),
                    self._set_clock_base)
        s.method(8, "0-0:1.0.0.255", 5, self._preset_time)
        s.method(8, "0-0:1.0.0.255", 4, self._adjust_to_preset)
        # Alert filters (ECS25a/b).
        for group in ("0-30", "0-33"):
            for register in range(11, 19):
                s.attribute(1, f"{group}:97.98.{register}.255", 2,
                            self._alert_getter(f"{group}:97.98.{register}.255"),
                            self._alert_setter(f"{group}:97.98.{register}.255"))
        # Power quality (ECS23): sag / swell counts and the average voltage profile.
        for phase in (32, 52, 72):
            s.attribute(3, f"1-0:{phase}.32.0.4", 2,
                        lambda _s, _d: Data(DataType.DOUBLE_LONG_UNSIGNED, self.sag_count))
            s.attribute(3, f"1-0:{phase}.36.0.4", 2,
                        lambda _s, _d: Data(DataType.DOUBLE_LONG_UNSIGNED, self.swell_count))
            for kind in (32, 36):
                s.attribute(3, f"1-0:{phase}.{kind}.0.4", 3, lambda _s, _d: _scaler_unit(0, 255))
            s.attribute(7, f"1-0:{phase}.24.0.255", 2, self._voltage_profile)
            s.attribute(7, f"1-0:{phase}.24.0.255", 4,
                        lambda _s, _d: Data(DataType.DOUBLE_LONG_UNSIGNED, 3600))
        # Logs (ECS35a/b) and profiles.
        s.attribute(7, "0-0:99.98.0.255", 2, self._log_getter(lambda: self.event_log))
        s.attribute(7, "0-0:99.98.1.255", 2,
                    self._log_getter(lambda: self.security_events, with_detail=False))
        # Energy registers: active import / export, reactive import / export (class 3).
        registers = self.registers
        for logical_name, read in (
            ("1-0:1.8.0.255", lambda: registers.active_import_wh),
            ("1-0:2.8.0.255", lambda: registers.active_export_wh),
            ("1-0:3.8.0.255", lambda: registers.reactive_import_varh),
            ("1-0:4.8.0.255", lambda: registers.reactive_export_varh),
        ):
            s.attribute(3, logical_name, 2, _register_getter(read))
            s.attribute(3, logical_name, 3, lambda _s, _d: _scaler_unit(0, 30))
        # Maximum demand (ECS18-style extended register).
        s.attribute(4, "1-0:1.6.0.255", 2,
                    lambda _s, _d: Data(DataType.DOUBLE_LONG_UNSIGNED, self.max_demand_w))
        s.attribute(4, "1-0:1.6.0.255", 5, lambda _s, _d: Data(
            DataType.OCTET_STRING, cosem_time(self.max_demand_at or GBCS_EPOCH)))

    # charges and calendar: passive until activated
    def _charge_setter(self, name: str, passive: StoredValue) -> Callable[[Data], None]:
        def set_(value: Data) -> None:
            rows, _scale = _unit_charge(value)  # refuse what could not be applied later
            if name == "0-0:19.20.4.255" and len(rows) != 1:
                raise CosemError(DataAccessResult.TYPE_UNMATCHED, "one standing charge")
            passive.set(value)
        return set_

    def _charge_activation(self, name: str, passive: StoredValue) -> Callable[[], None]:
        def apply() -> None:
            if passive.value is _EMPTY_CHARGE:
                return
            rows, scale = _unit_charge(passive.value)
            tariff = self.tariff
            if name == "0-0:19.20.4.255":
                tariff.standing_charge = rows[0][1]
            for index, price in rows if name != "0-0:19.20.4.255" else ():
                number = index[0] if len(index) == 1 else 0
                if 1 <= number <= TOU_REGISTERS:
                    target = tariff.tou_prices if name == "0-0:19.20.0.255" else (
                        tariff.secondary_tou_prices)
                    target[number - 1] = price
                elif 0xA1 <= number <= 0xD8 and 1 <= number & 0x0F <= BLOCK_BANDS:
                    tariff.block_prices[(number >> 4) - 0xA][(number & 0x0F) - 1] = price
            tariff.price_scale = scale
            tariff.updates += 1
            self.log_event(EVENT_TARIFF_UPDATED)
        return apply

    def _activation_setter(self, stored: StoredValue, what: str,
                           apply: Callable[[], None]) -> Callable[[Data], None]:
        """An activation time: all zero (or unspecified) means now, else at that time."""

        def set_(value: Data) -> None:
            stored.set(value)
            assert isinstance(value.value, bytes)
            raw = value.value
            at = None if raw[:4] in (bytes(4), b"\xff\xff\xff\xff") else parse_cosem_time(raw)
            if at is None or at <= self.now():
                apply()
            else:
                self.scheduled.append((at, what, apply))
        return set_

    def _apply_thresholds(self, per_band: list[StoredValue]) -> None:
        for band, stored in enumerate(per_band):
            values = stored.value.value
            if isinstance(values, list):
                # FFFFFFFF marks "no further block"
                self.tariff.block_thresholds_wh[band] = [
                    v.value for v in values if isinstance(v.value, int) and v.value != 0xFFFFFFFF
                ]
        self.tariff.updates += 1

    def apply_due(self) -> None:
        """Activate passive tables whose time has come (called as time passes)."""
        now = self.now()
        due = [item for item in self.scheduled if item[0] <= now]
        self.scheduled = [item for item in self.scheduled if item[0] > now]
        for _at, _what, apply in sorted(due, key=lambda item: item[0]):
            apply()

    def _apply_day_profiles(self, value: Data) -> None:
        """The switching times of the first day profile become the TOU switching table."""
        switching: list[tuple[int, int]] = []
        days = value.value
        if isinstance(days, list) and days:
            day = days[0].value
            if isinstance(day, list) and len(day) == 2 and isinstance(day[1].value, list):
                for action in day[1].value:
                    fields = action.value
                    if isinstance(fields, list) and len(fields) == 3:
                        start, _script, selector = fields
                        if isinstance(start.value, bytes) and len(start.value) >= 2:
                            minute = (start.value[0] % 24) * 60 + start.value[1] % 60
                            register = selector.value if isinstance(selector.value, int) else 1
                            switching.append((minute, max(register - 1, 0)))
        if switching:
            self.tariff.tou_switching = switching
            self.tariff.updates += 1

    # payment mode
    def _get_account_mode(self, _s: int | None, _d: Data | None) -> Data:
        return structure(Data(DataType.ENUM, self.credit.mode.value), Data(DataType.ENUM, 1))

    def _set_account_mode(self, value: Data) -> None:
        require_type(value, DataType.STRUCTURE)
        items = value.value
        assert isinstance(items, list)
        if not items or items[0].type is not DataType.ENUM:
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "account mode is structure(enum, ...)")
        try:
            mode = PaymentMode(items[0].value)
        except ValueError:
            raise CosemError(DataAccessResult.OTHER_REASON, "unknown payment mode") from None
        if mode is not self.credit.mode:
            self.credit.mode = mode
            self.log_event(EVENT_PAYMENT_MODE, bytes([mode.value]))
            if mode is PaymentMode.CREDIT and self.supply is SupplyState.DISABLED:
                self._set_supply(SupplyState.ARMED)

    def _set_emergency_credit_limit(self, value: Data) -> None:
        require_type(value, DataType.DOUBLE_LONG)
        assert isinstance(value.value, int)
        self.credit.emergency_credit_limit = value.value

    def _get_threshold(self, _s: int | None, _d: Data | None) -> Data:
        return Data(DataType.DOUBLE_LONG, self.credit.disablement_threshold)

    def _set_threshold(self, value: Data) -> None:
        require_type(value, DataType.DOUBLE_LONG)
        assert isinstance(value.value, int)
        self.credit.disablement_threshold = value.value

    # credit registers: 0 meter balance, 1 emergency credit, 2 accumulated debt
    def _credit_get(self, index: int) -> Callable[[int | None, Data | None], Data]:
        def get(_s: int | None, _d: Data | None) -> Data:
            values = [self.credit.meter_balance, self.credit.emergency_credit_balance,
                      sum(self.credit.debt)]
            return Data(DataType.DOUBLE_LONG, values[index])
        return get

    def _credit_update(self, index: int) -> Callable[[Data], Data | None]:
        def update(value: Data) -> None:
            require_type(value, DataType.DOUBLE_LONG)
            assert isinstance(value.value, int)
            if index == 0:
                self.credit.meter_balance += value.value
                self.log_event(EVENT_TOP_UP, value.value.to_bytes(4, "big", signed=True))
            elif index == 1:
                self.credit.emergency_credit_balance += value.value
            else:
                self.credit.debt[0] += value.value
            return None
        return update

    def _credit_set(self, index: int) -> Callable[[Data], Data | None]:
        def set_amount(value: Data) -> None:
            require_type(value, DataType.DOUBLE_LONG)
            assert isinstance(value.value, int)
            if index == 0:
                self.credit.meter_balance = value.value
            elif index == 1:
                self.credit.emergency_credit_balance = value.value
                self.credit.emergency_credit_active = False
            else:
                self.credit.debt = [value.value, 0, 0]
            return None
        return set_amount

    def enter_token(self, token: bytes) -> None:
        """A UTRN typed on the meter or the PPMID; raises CosemError if refused."""
        self.redeem_utrn(token, local=True)

    def redeem_utrn(self, token: bytes, *, local: bool = False) -> int:
        """Check a UTRN and credit it; the credited value, or CosemError (alert raised).

        Checks first, with no state touched: the verifier (check digit, MAC with the
        prepayment top-up key, top-up floor), the counter cache (pure), the maximum credit.
        Then one write puts the new counter cache and the credit in place together - the
        model's stand-in for one non-volatile transaction - so a power cut before it leaves
        the UTRN unused and the credit unchanged, and after it both are applied: a UTRN is
        never credited twice and an accepted one is never lost.
        """
        if self.utrn_verifier is None:
            raise CosemError(DataAccessResult.HARDWARE_FAULT, "no UTRN verifier on this meter")
        credit = self.credit
        try:
            if local and self.utrn_locked_until is not None and self.now() < self.utrn_locked_until:
                raise UtrnLockedOut(f"manual UTRN entry is suspended until {self.utrn_locked_until}")
            counter, amount = self.utrn_verifier(token, self.now())
            counters = credit.utrn_counters.accept(counter)
            limit = credit.max_credit_threshold
            if limit is not None and credit.meter_balance + amount > limit:
                raise UtrnExceedsMaxCredit(
                    f"the top-up would take the balance above {limit}")
        except UtrnError as exc:
            self.log_event(exc.alert, exc.reason.encode())
            self.outbox.append((exc.alert, self.now()))  # UTRN alerts go to the supplier
            if local and not isinstance(exc, UtrnLockedOut):
                self._count_manual_failure()
            # the result the RTDS shows for a refused top-up
            raise CosemError(DataAccessResult.HARDWARE_FAULT,
                             f"UTRN refused ({exc.reason}): {exc}") from None
        self._fault("before-commit")
        credit.utrn_counters = counters
        self.top_up(amount)
        self._fault("after-commit")
        if local:
            self.utrn_manual_failures = 0
            self.log_event(MESSAGE_CODE_PECS01)
        return amount

    def _count_manual_failure(self) -> None:
        self.utrn_manual_failures += 1
        if self.utrn_manual_failures >= UTRN_LOCKOUT_FAILURES:
            self.utrn_manual_failures = 0
            self.utrn_locked_until = self.now() + UTRN_LOCKOUT
            self.log_event(ALERT_UTRN_MANUAL_ENTRY_SUSPENDED)
            self.outbox.append((ALERT_UTRN_MANUAL_ENTRY_SUSPENDED, self.now()))

    def _fault(self, point: str) -> None:
        if self.power_cut is not None:
            self.power_cut(point)

    def today_import_wh(self) -> int:
        start = self.daily_log[-1].active_import_wh if self.daily_log else 0
        return self.registers.active_import_wh - start

    def demand_w(self) -> int:
        if len(self.profile) < 2:
            return 0
        return (self.profile[-1].active_import_wh - self.profile[-2].active_import_wh) * 2

    def cost_today(self) -> int:
        """Today's charges so far: energy at the current rate plus the standing charge."""
        price = self.tariff.tou_prices[self.tariff.rate_at(self.now())]
        return self.today_import_wh() * price // 1000 + self.tariff.standing_charge

    def _enter_token(self, value: Data) -> None:
        require_type(value, DataType.OCTET_STRING)
        assert isinstance(value.value, bytes)
        self.redeem_utrn(value.value)

    # clock
    def _set_clock_base(self, value: Data) -> None:
        require_type(value, DataType.ENUM)
        assert isinstance(value.value, int)
        self.clock_base = value.value

    def _preset_time(self, value: Data) -> None:
        require_type(value, DataType.STRUCTURE)
        items = value.value
        assert isinstance(items, list)
        if len(items) != 3 or any(i.type is not DataType.OCTET_STRING for i in items):
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "preset: three date-times")
        raw = [i.value for i in items if isinstance(i.value, bytes)]
        start = parse_cosem_time(raw[1])
        end = parse_cosem_time(raw[2])
        if start is None or end is None or end < start:
            raise CosemError(DataAccessResult.OTHER_REASON, "preset validity window")
        # The preset time is "unspecified" in GBCS: the meter takes UTC from the window's end.
        self.preset = (end, start, end)

    def _adjust_to_preset(self, value: Data) -> None:
        require_type(value, DataType.INTEGER)
        if self.preset is None:
            raise CosemError(DataAccessResult.TEMPORARY_FAILURE, "no preset time")
        _target, start, end = self.preset
        now = self.now()
        # ECS70 synchronises the clock only within the validity window; outside it the meter
        # keeps its time (it is already in sync or the command is stale).
        if not start <= now <= end:
            self.log_event(EVENT_CLOCK_ADJUSTED, b"\x00")
        self.preset = None

    def set_clock(self, moment: dt.datetime) -> None:
        self.clock_offset = moment - self.clock.now()
        self.log_event(EVENT_CLOCK_ADJUSTED, b"\x01")

    # alerts
    def _alert_getter(self, name: str) -> Callable[[int | None, Data | None], Data]:
        key = obis(name)

        def get(_s: int | None, _d: Data | None) -> Data:
            return Data(DataType.BIT_STRING, self.alert_filters.get(key, BitString(0, b"")))
        return get

    def _alert_setter(self, name: str) -> Callable[[Data], None]:
        key = obis(name)

        def set_(value: Data) -> None:
            require_type(value, DataType.BIT_STRING)
            assert isinstance(value.value, BitString)
            self.alert_filters[key] = value.value
            self.log_event(EVENT_ALERT_CONFIG)
        return set_

    def alert_enabled(self, group: str, register: int, bit: int) -> bool:
        filt = self.alert_filters.get(obis(f"{group}:97.98.{register}.255"))
        if filt is None or bit >= filt.length:
            return True  # GBCS default: alerts on
        return bool(filt.data[bit // 8] & (0x80 >> (bit % 8)))

    # profiles and logs
    def _voltage_profile(self, selector: int | None, selection: Data | None) -> Data:
        start, end = _range(selector, selection)
        rows = [[Data(DataType.DOUBLE_LONG_UNSIGNED, gbcs_seconds(at)),
                 Data(DataType.DOUBLE_LONG_UNSIGNED, volts)]
                for at, volts in self.voltage_samples if _within(at, start, end)]
        return compact_array(bytes([2, 2, 6, 6]), rows)

    def _log_getter(self, source: Callable[[], list[LogEntry]], *, with_detail: bool = True
                    ) -> Callable[[int | None, Data | None], Data]:
        """Event log rows: time, event code, and (event log only) the event's detail."""

        def get(selector: int | None, selection: Data | None) -> Data:
            start, end = _range(selector, selection)
            rows = []
            for entry in source():
                if not _within(entry.at, start, end):
                    continue
                row = [Data(DataType.DOUBLE_LONG_UNSIGNED, gbcs_seconds(entry.at)),
                       Data(DataType.LONG_UNSIGNED, entry.code)]
                if with_detail:
                    row.append(Data(DataType.OCTET_STRING, entry.detail))
                rows.append(row)
            description = bytes([2, 3, 6, 0x12, 9]) if with_detail else bytes([2, 2, 6, 0x12])
            return compact_array(description, rows)
        return get

    def half_hour_profile(self, start: dt.datetime | None, end: dt.datetime | None) -> Data:
        rows = [[Data(DataType.DOUBLE_LONG_UNSIGNED, gbcs_seconds(h.at)),
                 Data(DataType.DOUBLE_LONG_UNSIGNED, h.active_import_wh & 0xFFFFFFFF)]
                for h in self.profile if _within(h.at, start, end)]
        return compact_array(bytes([2, 2, 6, 6]), rows)

    def daily_read_log(self, start: dt.datetime | None, end: dt.datetime | None) -> Data:
        # time, total import, the TOU registers, then each block's registers per band
        description = bytes([2, 3 + BLOCKS, 6, 6, 1, 0, TOU_REGISTERS, 6]) + bytes(
            [1, 0, BLOCK_BANDS, 6] * BLOCKS
        )
        contents = b""
        for day in self.daily_log:
            if not _within(day.at, start, end):
                continue
            contents += gbcs_seconds(day.at).to_bytes(4, "big")
            contents += (day.active_import_wh & 0xFFFFFFFF).to_bytes(4, "big")
            contents += b"".join((v & 0xFFFFFFFF).to_bytes(4, "big") for v in day.tou_wh)
            contents += b"".join(
                (v & 0xFFFFFFFF).to_bytes(4, "big") for block in day.block_wh for v in block
            )
        return Data(DataType.COMPACT_ARRAY, CompactArray(description, contents))


def _register_getter(read: Callable[[], int]) -> Callable[[int | None, Data | None], Data]:
    return lambda _s, _d: Data(DataType.DOUBLE_LONG_UNSIGNED, read() & 0xFFFFFFFF)


def _scaler_unit(scaler: int, unit: int) -> Data:
    return structure(Data(DataType.INTEGER, scaler), Data(DataType.ENUM, unit))


def _members(value: Data) -> list[Data]:
    if not isinstance(value.value, list):
        raise CosemError(DataAccessResult.TYPE_UNMATCHED, "unit charge structure")
    return value.value


def _unit_charge(value: Data) -> tuple[list[tuple[bytes, int]], int]:
    """(index, price) rows and the price scale from a charge's unit_charge structure:
    ``structure(structure(commodity scale, price scale), commodity, array(structure(index,
    price)))``."""
    require_type(value, DataType.STRUCTURE)
    items = _members(value)
    if len(items) != 3:
        raise CosemError(DataAccessResult.TYPE_UNMATCHED, "unit charge structure")
    scalers = _members(items[0])
    scale = scalers[1].value if len(scalers) == 2 else None
    rows: list[tuple[bytes, int]] = []
    for row in _members(items[2]):
        cells = _members(row)
        index, price = (cells[0].value, cells[1].value) if len(cells) == 2 else (None, None)
        if not isinstance(index, bytes) or not isinstance(price, int):
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "unit charge row")
        rows.append((index, price))
    if not isinstance(scale, int):
        raise CosemError(DataAccessResult.TYPE_UNMATCHED, "unit charge scale")
    return rows, scale


_EMPTY_CHARGE = structure(
    structure(Data(DataType.INTEGER, 0), Data(DataType.INTEGER, -5)),
    structure(Data(DataType.LONG_UNSIGNED, 0), Data(DataType.OCTET_STRING, bytes(6)),
              Data(DataType.INTEGER, 0)),
    Data(DataType.ARRAY, []),
)


def _range(selector: int | None, selection: Data | None
           ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Range selection (selector 1): structure(restricting object, from, to, columns)."""
    if selector is None or selection is None:
        return None, None
    if selector != 1 or selection.type is not DataType.STRUCTURE:
        raise CosemError(DataAccessResult.OBJECT_UNAVAILABLE, f"selector {selector}")
    items = selection.value
    assert isinstance(items, list)
    if len(items) < 3:
        raise CosemError(DataAccessResult.TYPE_UNMATCHED, "range selection")
    bounds: list[dt.datetime | None] = []
    for item in items[1:3]:
        if item.type is DataType.DOUBLE_LONG_UNSIGNED and isinstance(item.value, int):
            bounds.append(GBCS_EPOCH + dt.timedelta(seconds=item.value))
        elif item.type is DataType.OCTET_STRING and isinstance(item.value, bytes):
            bounds.append(parse_cosem_time(item.value))
        else:
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "range bound")
    return bounds[0], bounds[1]


def _within(at: dt.datetime, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    return (start is None or at >= start) and (end is None or at <= end)

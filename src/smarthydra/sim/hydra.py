"""The Hydra value-added-services story: one home, all applets, every party checking.

:func:`run_hydra_scenario` (``smarthydra demo --scenario hydra``) runs a home over two
months of simulated demand (:mod:`smarthydra.sim.household`) with every applet of
:mod:`smarthydra.applets.hub` on its hub's secure element, and checks what each party gets:

* the supplier's bills, verified (certified applet key, approved source hash, its own tariff)
  and equal to the bill computed from the raw ground truth; a tampered bill and a bill from
  an unapproved tariff applet are both rejected;
* telehealth readings that the provider opens and the supplier, the DCC and the CSP cannot;
* daily power-quality summaries to the distributor;
* an energy agent's consent granted at the in-home display, then revoked: data flows up to
  the revocation and not from the next cycle on;
* a price comparison consented through the supplier, forwarded by the DCC only while its
  register holds the consent;
* a disputed bill justified to the ombudsman, with only a verdict to the supplier.

Every party drives its applet over its own SCP03 session whose APDUs travel as frames over the
WAN (:attr:`HydraParties.wan`) to the hub, where the virtual terminal hands them to the secure
element on the party logical channel (:mod:`smarthydra.applets.party_wan`); a tap on the WAN
shows only protected bytes. The hub reads the meter's half-hourly profile and voltages over
the HAN (:class:`MeterFeed`). :func:`serve_meter` puts a Hydra hub behind the real DCC for a
meter, so an Other User's consented 4.17 is answered with the price-comparison applet's
sealed release (:mod:`smarthydra.applets.dcc_route`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smarthydra.applets import cose
from smarthydra.applets.consent import Consent, DataKind, Granularity, LogEntry
from smarthydra.applets.dcc_route import PriceComparisonRoute
from smarthydra.applets.hub import (
    BILLING,
    PROVIDERS,
    TELEHEALTH,
    ChannelRefused,
    HydraCommandError,
    HydraHost,
    HydraSetup,
    PartyChannel,
    billing_package,
    hydra_vas_profile,
)
from smarthydra.applets.party_wan import PARTY_FRAME_TAG, PARTY_LOGICAL_CHANNEL, PartyApduPort
from smarthydra.applets.tariff import Tariff, bill, economy7
from smarthydra.applets.telehealth import INS_ENROL, HealthReading
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.rng import DeterministicRandom
from smarthydra.card.runtime import CardManager
from smarthydra.clock import FixedClock
from smarthydra.eui import Eui64
from smarthydra.gbcs.axdr import CompactArray, Data, DataType, structure
from smarthydra.gbcs.catalogue import Catalogue
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    AccessResponse,
    CosemDescriptor,
    DataAccessResult,
    RequestKind,
    RequestSpecification,
    decode_xdlms,
)
from smarthydra.parties.consent import (
    ConsentNotRecorded,
    DccConsentRegister,
    consent_register,
)
from smarthydra.parties.hydra import (
    CardIssuer,
    Distributor,
    EnergyAgent,
    Ombudsman,
    OtherUser,
    PartyKeys,
    StatementRejected,
    Supplier,
    deploy_billing,
)
from smarthydra.parties.hydra_wan import WanPartyLink
from smarthydra.parties.telehealth import TelehealthProvider
from smarthydra.premises.cosem import CosemError, CosemServer, obis
from smarthydra.premises.esme_model import GBCS_EPOCH, EsmeModel, gbcs_seconds
from smarthydra.premises.hub import CommsHub, DeviceKind, HanDevice
from smarthydra.premises.hub_applets import hydra_profile
from smarthydra.premises.inhome import BloodPressureMonitor, WeighingScale
from smarthydra.premises.inhome import HealthReading as InHomeReading
from smarthydra.sim.household import SLOTS, DayDemand, Household, generate_day
from smarthydra.wan.network import WanNetwork

PARTY_NAMES = {"supplier": "supplier-a", "ombudsman": "energy-ombudsman",
               "distributor": "dno-south", "agent": "agent-greenwise",
               "other-user": "ou-comparethemeter", "telehealth": "telehealth-nhs"}
SCALE = bytes.fromhex("00124B0000AA0001")
BP_MONITOR = bytes.fromhex("00124B0000AA0002")


@dataclass
class HydraParties:
    """Every party of the story, with fresh keys."""

    issuer: CardIssuer
    keys: dict[str, PartyKeys]
    supplier: Supplier
    distributor: Distributor
    agent: EnergyAgent
    other_user: OtherUser
    ombudsman: Ombudsman
    telehealth: TelehealthProvider
    dcc: DccConsentRegister  # the DCC's consent register
    clock: FixedClock = field(default_factory=FixedClock)
    dcc_keys: PartyKeys = field(default_factory=lambda: PartyKeys("dcc"))
    csp_keys: PartyKeys = field(default_factory=lambda: PartyKeys("csp"))
    #: the WAN (the DCC's leg through the CSP) the parties' secure channels travel over
    wan: WanNetwork = field(default_factory=WanNetwork)

    @classmethod
    def create(cls) -> HydraParties:
        issuer = CardIssuer()
        keys = {p: PartyKeys(PARTY_NAMES[p]) for p in PROVIDERS}
        clock = FixedClock()
        return cls(issuer, keys, Supplier(keys["supplier"], issuer),
                   Distributor(keys["distributor"], issuer), EnergyAgent(keys["agent"], issuer),
                   OtherUser(keys["other-user"], issuer), Ombudsman(keys["ombudsman"], issuer),
                   TelehealthProvider(keys["telehealth"], issuer),
                   consent_register(issuer, clock), clock=clock)

    def setup(self, hub: str, meter: str, **overrides: Any) -> HydraSetup:
        # demonstration SCP03 keys, one per provider and hub (an HSM makes them in production)
        ssd_keys = {p: hashlib.sha256(f"{hub}/{p}".encode()).digest()[:16] for p in PROVIDERS}
        return HydraSetup(hub, meter, {p: k.public for p, k in self.keys.items()}, ssd_keys,
                          issuer_token=self.issuer.token_public, **overrides)


def hub_card(setup: HydraSetup, hub_eui: Eui64) -> Card:
    """One secure element for the whole hub: the comms hub and gas proxy functions
    (:mod:`smarthydra.premises.hub_applets`) beside the value-added applets."""
    vas = hydra_vas_profile(setup)
    functions = hydra_profile(hub_eui.value)

    def personalize(manager: CardManager) -> None:
        for step in (vas.personalize, functions.personalize):
            if step is not None:
                step(manager)

    profile = CardProfile("hydra-hub", (*vas.load_files, *functions.load_files), personalize,
                          vas.config, vas.resolver)
    return Card(MemoryBacking(), profile, rng=DeterministicRandom(b"hydra" + hub_eui.value))


HALF_HOUR_PROFILE = CosemDescriptor(7, obis("0-0:99.1.0.255"), 2)  # ECS22b's profile
VOLTAGE_PROFILE = CosemDescriptor(7, obis("1-0:32.24.0.255"), 2)  # ECS23's average voltage
_ROW = 8  # a compact-array row of the two profiles: time (4) || value (4)


class MeterReadError(Exception):
    """The meter's HAN answer to the hub's profile read is missing or malformed."""


class MeterFeed:
    """The home's electricity meter on the hub's HAN: the ESME model of
    :mod:`smarthydra.premises.esme_model` (its registers, its half-hourly profile and its
    voltage samples), answering the hub's profile reads over the HAN.

    The hub reads a day with one xDLMS access request (the ECS22b half-hourly active-import
    profile and the ECS23 voltage profile, each GET with range selection), sealed with the
    meter's HAN link key by the CHF applet; the meter answers from the same COSEM objects it
    serves to GBCS reads. Over the HAN the link key is the security (the request comes from
    the hub, not from a remote party, so it carries no ACB MAC)."""

    def __init__(self, eui: Eui64 | None = None) -> None:
        self.eui = eui or Eui64(bytes.fromhex("00DB1234E5000001"))
        self.clock = FixedClock()
        self.model = EsmeModel(self.clock)
        self.reads = 0
        self.server = CosemServer()
        self.server.attribute(HALF_HOUR_PROFILE.class_id, HALF_HOUR_PROFILE.obis,
                              HALF_HOUR_PROFILE.index, self._half_hours)
        voltage = self.model.server.attributes[(VOLTAGE_PROFILE.class_id,
                                                VOLTAGE_PROFILE.instance_id,
                                                VOLTAGE_PROFILE.index)]
        self.server.attribute(VOLTAGE_PROFILE.class_id, VOLTAGE_PROFILE.obis,
                              VOLTAGE_PROFILE.index, voltage.get)

    def _half_hours(self, selector: int | None, selection: Data | None) -> Data:
        start, end = _range_bounds(selector, selection)
        return self.model.half_hour_profile(start, end)

    def run_day(self, date: dt.date, demand: DayDemand) -> None:
        """The household's day through the meter: each half hour's energy and voltage."""
        model = self.model
        self.clock.current = dt.datetime.combine(date, dt.time(0), dt.UTC)
        for wh, varh, export, volts in zip(demand.import_wh, demand.reactive_varh,
                                           demand.export_wh, demand.voltage_v, strict=True):
            model.consume(wh, varh, export)
            self.clock.advance(dt.timedelta(minutes=30))
            model.end_of_half_hour(volts)
        model.end_of_day()

    def receive(self, wire: bytes) -> bytes | None:
        """A HAN request (already through link security): an access request, answered."""
        try:
            request = decode_xdlms(wire)
        except GbcsError:
            return None
        if not isinstance(request, AccessRequest):
            return None
        self.reads += 1
        return self.server.handle(request).encode()


def _range_bounds(selector: int | None, selection: Data | None
                  ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Range selection (selector 1): structure(restricting object, from, to[, columns])."""
    if selector is None or selection is None:
        return None, None
    items = selection.value
    if selector != 1 or not isinstance(items, list) or len(items) < 3:
        raise CosemError(DataAccessResult.TYPE_UNMATCHED, "range selection")
    bounds = []
    for item in items[1:3]:
        if item.type is not DataType.DOUBLE_LONG_UNSIGNED or not isinstance(item.value, int):
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "range bound")
        bounds.append(GBCS_EPOCH + dt.timedelta(seconds=item.value))
    return bounds[0], bounds[1]


def profile_read(date: dt.date, invoke_id: int) -> AccessRequest:
    """The hub's HAN read of one day: the active-import register at 00:00 (the previous
    half hour's end) and at each half hour's end, and the day's 48 voltage samples."""
    midnight = dt.datetime.combine(date, dt.time(0), dt.UTC)
    start = gbcs_seconds(midnight)
    end = gbcs_seconds(midnight + dt.timedelta(days=1))

    def ranged(descriptor: CosemDescriptor, first: int) -> RequestSpecification:
        return RequestSpecification(RequestKind.GET_WITH_SELECTION, descriptor, 1, structure(
            Data(DataType.NULL_DATA), Data(DataType.DOUBLE_LONG_UNSIGNED, first),
            Data(DataType.DOUBLE_LONG_UNSIGNED, end), Data(DataType.ARRAY, [])))

    return AccessRequest(invoke_id, None, [ranged(HALF_HOUR_PROFILE, start),
                                           ranged(VOLTAGE_PROFILE, start + 1)],
                         [Data(DataType.NULL_DATA)] * 2)


def _rows(value: Data) -> list[tuple[int, int]]:
    packed = value.value
    if value.type is not DataType.COMPACT_ARRAY or not isinstance(packed, CompactArray) or (
            len(packed.contents) % _ROW):
        raise MeterReadError("expected a compact array of (time, value) rows")
    raw = packed.contents
    return [(int.from_bytes(raw[i:i + 4], "big"), int.from_bytes(raw[i + 4:i + 8], "big"))
            for i in range(0, len(raw), _ROW)]


def day_from_profile_read(date: dt.date, answer: bytes) -> tuple[list[int], list[int]]:
    """(48 half hours' import in Wh, 48 voltages) from the meter's answer to
    :func:`profile_read`. The register at 00:00 is the previous day's last entry; a meter's
    first day has none and its register started at zero."""
    try:
        response = decode_xdlms(answer)
    except GbcsError as exc:
        raise MeterReadError(f"meter answer: {exc}") from None
    if not isinstance(response, AccessResponse) or len(response.data) != 2 or any(
            r.result != DataAccessResult.SUCCESS for r in response.results):
        raise MeterReadError("the meter refused the profile read")
    registers = [v for _, v in _rows(response.data[0])]
    voltages = [v for _, v in _rows(response.data[1])]
    if len(registers) == SLOTS:
        registers = [0, *registers]
    if len(registers) != SLOTS + 1 or len(voltages) != SLOTS:
        raise MeterReadError(f"{date}: {len(registers)} profile entries, {len(voltages)} "
                             "voltage samples")
    return [b - a for a, b in itertools.pairwise(registers)], voltages


@dataclass
class HydraHome:
    """One home: its household, its hub (one secure element for the hub's functions and the
    value-added applets), health devices on the HAN, and the raw ground truth."""

    parties: HydraParties
    setup: HydraSetup
    hub: CommsHub
    host: HydraHost
    household: Household
    scale: WeighingScale
    monitor: BloodPressureMonitor
    truth: dict[dt.date, DayDemand] = field(default_factory=dict)
    meter: MeterFeed = field(default_factory=MeterFeed)  # on the hub's HAN
    outbox: list[bytes] = field(default_factory=list)  # sealed readings for the WAN
    hub_eui: Eui64 = field(default_factory=lambda: Eui64(bytes(8)))
    links: dict[str, WanPartyLink] = field(default_factory=dict)  # each party's WAN route
    received: list[bytes] = field(default_factory=list)  # what parties got over their channels

    @classmethod
    def create(cls, parties: HydraParties, index: int = 1, **overrides: Any) -> HydraHome:
        setup = parties.setup(f"hub-{index:05d}", f"mpan-{1_900_000_000 + index}", **overrides)
        hub_eui = Eui64(bytes.fromhex("00DB1200") + index.to_bytes(4, "big"))
        card = hub_card(setup, hub_eui)
        hub = CommsHub(hub_eui, FixedClock(), card=card)
        host = HydraHost(card, own_channel=True)  # the hub's functions keep the basic channel
        # the parties' sessions arrive over the WAN; the hub's virtual terminal passes their
        # APDUs to the secure element on the party logical channel
        hub.party_port = PartyApduPort(hub.vt.relay)
        hub.party_port.open()
        parties.wan.connect(hub_eui, hub)
        links = {p: WanPartyLink(parties.wan, hub_eui, p) for p in PROVIDERS}
        if setup.post_issuance_billing:  # the supplier loads its DAP-approved billing applet
            deploy_billing(host, setup, parties.issuer, parties.supplier,
                           transmit=links["supplier"].transmit, channel=PARTY_LOGICAL_CHANNEL)
        parties.issuer.certify_hub(setup, host)
        parties.dcc.enrol_hub(setup.hub, setup.meter)  # the DCC knows the hub's meter point
        for provider in PROVIDERS:  # each party's own secure channel, over the WAN
            host.connect(provider, setup.channel_keys(provider), links[provider].transmit,
                         PARTY_LOGICAL_CHANNEL)
        for eui in (SCALE, BP_MONITOR):  # the provider enrols the devices it gave out
            host.enrol_health_device(eui)
        scale, monitor = WeighingScale(Eui64(SCALE)), BloodPressureMonitor(Eui64(BP_MONITOR))
        meter = MeterFeed(Eui64(bytes.fromhex("00DB1234E5") + index.to_bytes(3, "big")))
        hub.join(meter, kind=DeviceKind.ESME)
        home = cls(parties, setup, hub, host, Household.sample(index), scale, monitor,
                   meter=meter, hub_eui=hub_eui, links=links)
        for device in (scale, monitor):
            hub.join(device, kind=DeviceKind.TYPE_2)
        hub.health_sink = home.telehealth_route
        return home

    def telehealth_route(self, reading: InHomeReading) -> None:
        """The hub routes a health device's reading (already through HAN link security) to
        the telehealth applet; what comes back is sealed for the provider."""
        stamp = int(reading.at.timestamp())
        if reading.kind == "weight":
            parts = [("weight", "g")]
        else:
            parts = [("systolic", "mmHg"), ("diastolic", "mmHg"), ("pulse", "bpm")]
        for (kind, unit), value in zip(parts, reading.values, strict=False):
            self.outbox.append(self.host.health_reading(
                reading.device.value, HealthReading(kind, value, unit, stamp)))

    def live_day(self, date: dt.date) -> DayDemand:
        """The household's day runs through the electricity meter; the hub reads the meter's
        half-hourly profile and voltages into the meter-data applet; the distributor gets its
        summary. The demand generator's figures stay aside as the ground truth."""
        demand = generate_day(self.household, date)
        self.truth[date] = demand
        self.meter.run_day(date, demand)
        imports, volts = self.read_meter(date)
        self.host.push_day(date, imports, volts)
        report = self.host.power_quality(date)
        self.received.append(report)
        self.parties.distributor.open(report)
        return demand

    def read_meter(self, date: dt.date) -> tuple[list[int], list[int]]:
        """The hub reads the meter's day over the HAN (link-sealed by the CHF applet)."""
        request = profile_read(date, 0x00100000 | date.toordinal() & 0xFFFFF)
        answer = self.hub.han_exchange(self.meter.eui, request.encode())
        if answer is None:
            raise MeterReadError(f"{date}: the meter gave no answer over the HAN")
        return day_from_profile_read(date, answer)

    def ground_truth_bill(self, tariff: Tariff, first: dt.date, last: dt.date) -> int:
        days = [self.truth[first + dt.timedelta(days=n)].import_wh
                for n in range((last - first).days + 1)]
        return bill(tariff, days).amount_pence


def _ecs66_codes() -> tuple[int, ...]:
    spec = Catalogue.default().use_case("ECS66")  # Read ESME Daily Consumption Log (4.17)
    if spec is None:
        raise LookupError("the GBCS catalogue has no ECS66")
    return spec.message_codes


def serve_meter(home: HydraHome, wan: WanNetwork, hub: Eui64, esme: HanDevice,
                other_users: Mapping[bytes, str], message_codes: frozenset[int] | None = None
                ) -> PriceComparisonRoute:
    """Make ``home``'s Hydra hub the one the DCC reaches for ``esme`` (at ``hub`` on ``wan``):
    the meter joins its HAN, and an Other User's consumption-log read (ECS66, DUIS 4.17) is
    answered by the price-comparison applet's sealed release instead of the meter's raw log."""
    home.hub.join(esme)
    wan.connect(hub, home.hub)
    route = PriceComparisonRoute(esme.eui.value, other_users,
                                 message_codes or frozenset(_ecs66_codes()),
                                 home.host.routed_price_comparison, HydraCommandError)
    home.hub.value_added = route.answer
    return route


@dataclass
class WanTap:
    """What the CSP sees of the WAN: every frame down to the hubs and every answer up."""

    frames: list[bytes] = field(default_factory=list)

    def attach(self, wan: WanNetwork) -> None:
        wan.tap = self.see
        wan.uplink_tap = self.see

    def see(self, _hub: Eui64, frame: bytes) -> None:
        self.frames.append(frame)

    def leaks(self, plaintexts: list[bytes], window: int = 16) -> int:
        """How many tapped frames hold any ``window`` bytes of any of ``plaintexts``."""
        pieces = {p[i:i + window] for p in plaintexts for i in range(0, len(p) - window + 1, 8)}
        return sum(1 for frame in self.frames
                   if any(frame[i:i + window] in pieces for i in range(len(frame) - window + 1)))


@dataclass
class Check:
    what: str
    result: Any
    ok: bool


@dataclass
class HydraReport:
    checks: list[Check] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def check(self, what: str, result: Any, ok: bool) -> None:
        self.checks.append(Check(what, result, ok))

    def as_json(self) -> dict[str, Any]:
        return {"scenario": "hydra", "ok": self.ok, "seconds": round(self.seconds, 3),
                "checks": [{"what": c.what, "result": c.result, "ok": c.ok}
                           for c in self.checks],
                "consumer_log": self.log}

    def render(self) -> str:
        lines = ["Hydra value-added services"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.what}: {c.result}" for c in self.checks]
        lines.append("  consumer's release log (in-home display):")
        lines += [f"    {entry}" for entry in self.log]
        lines.append(f"  all checks hold: {'yes' if self.ok else 'NO'} ({self.seconds:.2f} s)")
        return "\n".join(lines)

    def to_json_text(self) -> str:
        return json.dumps(self.as_json(), indent=2)


def _describe_run(run: list[LogEntry]) -> str:
    if len(run) == 1:
        return run[0].describe()
    head = run[0]
    return (f"{dt.date.fromordinal(head.day)}..{dt.date.fromordinal(run[-1].day)}: "
            f"{head.event} {head.party} {head.data} ({head.granularity}) daily, "
            f"{len(run)} times, via {head.via}")


def summarise_log(entries: list[LogEntry]) -> list[str]:
    """The consumer's log with runs of the same daily event folded into one line."""
    lines: list[str] = []
    runs: dict[tuple[str, ...], tuple[int, list[LogEntry]]] = {}
    for entry in entries:
        key = (entry.event, entry.party, entry.data, entry.granularity, entry.via)
        daily = entry.first_day == entry.last_day == entry.day
        current = runs.get(key)
        if daily and current is not None and current[1][-1].day + 1 == entry.day:
            current[1].append(entry)
            lines[current[0]] = _describe_run(current[1])
            continue
        lines.append(entry.describe())
        if daily:
            runs[key] = (len(lines) - 1, [entry])
    return lines


def _fails(action: Callable[[], object], *errors: type[BaseException]) -> bool:
    try:
        action()
    except errors:
        return True
    return False


def run_hydra_scenario(start: dt.date = dt.date(2026, 1, 1), days: int = 59,
                       progress: Callable[[str], None] | None = None) -> HydraReport:
    """Run the story; ``days`` from ``start`` (at least 35, so a month can be billed)."""
    if days < 35:
        raise ValueError("the hydra scenario needs at least 35 days")
    began = time.perf_counter()
    report = HydraReport()
    note = progress or (lambda _stage: None)
    parties = HydraParties.create()
    tap = WanTap()
    tap.attach(parties.wan)
    home = HydraHome.create(parties)
    host, supplier = home.host, parties.supplier
    note("hub personalised: 7 applets, 6 supplementary security domains")

    tariff = economy7()
    tariff_message = supplier.tariff_message(tariff)
    host.set_tariff(tariff_message)
    agent_party = parties.keys["agent"].name
    ou_party = parties.keys["other-user"].name
    consent_day = start + dt.timedelta(days=9)
    revoke_day = start + dt.timedelta(days=19)
    agent_days: list[dt.date] = []
    agent_refused: list[dt.date] = []
    sealed_health: list[bytes] = []
    bills: list[tuple[dt.date, dt.date, bytes]] = []
    period_start = start
    disputed: tuple[bytes, bytes] | None = None
    for n in range(days):
        today = start + dt.timedelta(days=n)
        home.live_day(today)
        if today == consent_day:
            host.grant_at_ihd(Consent(agent_party, DataKind.CONSUMPTION, Granularity.HOURLY,
                                      today.toordinal(), today.toordinal() + 365))
        if today == revoke_day:
            host.revoke_at_ihd(agent_party)
        try:  # the agent's daily cycle: yesterday's and today's data if consented
            parties.agent.open(host.agent_release(today, today))
            agent_days.append(today)
        except HydraCommandError:
            agent_refused.append(today)
        at = dt.datetime.combine(today, dt.time(7, 30), dt.UTC)
        home.scale.weigh(home.hub.receive_from_han, 81_000 - 20 * n, at)
        home.monitor.measure(home.hub.receive_from_han, 128 + n % 7, 84, 66, at)
        for sealed in home.outbox:  # the WAN carries them; only the provider can open them
            sealed_health.append(sealed)
            parties.telehealth.receive(sealed)
        home.outbox.clear()
        if (today + dt.timedelta(days=1)).day == 1:  # the last day of a month: bill it
            bills.append((period_start, today, host.close_period(period_start, today)))
            period_start = today + dt.timedelta(days=1)
        if bills and disputed is None and today == bills[0][1] + dt.timedelta(days=5):
            disputed = host.dispute(bills[0][0], bills[0][1])  # the consumer queries a bill
    note(f"{days} days simulated")

    verified = [(supplier.receive_bill(sealed, home.setup.meter),
                 home.ground_truth_bill(tariff, first, last)) for first, last, sealed in bills]
    report.check("monthly bills verified by the supplier and equal to the ground-truth bill",
                 ", ".join(f"{b.first:%b}: {b.amount_pence} p (truth {t} p)" for b, t in verified),
                 bool(verified) and all(b.amount_pence == t for b, t in verified))
    sealed_bill = bills[0][2]
    tampered = bytearray(sealed_bill)
    tampered[-20] ^= 0x01
    report.check("tampered bill rejected", "rejected",
                 _fails(lambda: supplier.receive_bill(bytes(tampered)), StatementRejected))

    supplier_keys, dcc, csp = parties.keys["supplier"], parties.dcc_keys, parties.csp_keys
    locked_out = all(_fails(functools.partial(cose.open_sealed, sealed_health[0], k.agreement),
                            cose.EnvelopeError) for k in (supplier_keys, dcc, csp))
    report.check("telehealth readings from HAN devices reaching only the provider",
                 f"{len(parties.telehealth.readings)} readings opened by the provider; "
                 "supplier, DCC and CSP cannot open them", locked_out
                 and len(parties.telehealth.readings) == 4 * days)
    report.check("telehealth provider cannot read the bill", "cannot open",
                 _fails(lambda: parties.telehealth.open(sealed_bill), StatementRejected))

    before = [d for d in agent_days if d < revoke_day]
    report.check("energy agent: data only from consent to revocation",
                 f"{len(agent_days)} days released ({consent_day}..{revoke_day - dt.timedelta(1)})"
                 f", {len(agent_refused)} refused",
                 agent_days == before and bool(agent_days) and agent_days[0] == consent_day
                 and all(d >= revoke_day or d < consent_day for d in agent_refused))

    # price comparison: consent through the supplier, receipt to the DCC, delivery via the DCC
    today = start + dt.timedelta(days=days - 1)
    receipt = host.grant_via_supplier(supplier.consent_instruction("grant", Consent(
        ou_party, DataKind.CONSUMPTION, Granularity.DAILY, start.toordinal(),
        today.toordinal() + 30)))
    parties.dcc.record(receipt, home.setup.hub)
    delivered: list[dict[str, Any]] = []
    comparison = host.price_comparison()
    parties.dcc.forward(comparison, lambda s: delivered.append(parties.other_user.open(s)),
                        today.toordinal())
    parties.dcc.record(host.revoke_via_supplier(supplier.consent_instruction("revoke", ou_party)),
                       home.setup.hub)
    applet_refuses = _fails(host.price_comparison, HydraCommandError)
    stale = _fails(lambda: parties.dcc.forward(
        comparison, lambda s: delivered.append(parties.other_user.open(s)), today.toordinal()),
        ConsentNotRecorded)
    report.check("price comparison via the DCC: released with consent, stopped on revocation",
                 f"{len(delivered[0]['data']) if delivered else 0} daily figures delivered; "
                 "after revocation the applet refuses and the DCC forwards nothing",
                 len(delivered) == 1 and applet_refuses and stale)

    if disputed is None:
        raise ValueError("the scenario ran too few days for a dispute")
    justification, verdict = disputed
    opened = parties.ombudsman.check_justification(justification)
    outcome = supplier.receive_verdict(verdict, home.setup.hub)
    report.check("disputed bill justified to the ombudsman; supplier gets only a verdict",
                 f"breakdown adds up: {opened['adds-up']}, verdict agrees: {outcome['agrees']}",
                 bool(opened["adds-up"]) and outcome["agrees"] is True
                 and "breakdown" not in outcome)
    report.check("distributor power-quality summaries", f"{len(parties.distributor.received)} "
                 "days, no consumption fields", len(parties.distributor.received) == days
                 and all("data" not in p for p in parties.distributor.received))

    # an unapproved tariff applet (a copy whose source differs) is detected
    from smarthydra.applets.billing import BillingApplet

    class UnreviewedBillingApplet(BillingApplet):  # a different class: a different source hash
        source_modules = (*BillingApplet.source_modules, "smarthydra.sim.hydra")

    rogue = HydraHome.create(parties, 2, classes={
        **home.setup.classes, "billing": UnreviewedBillingApplet}, post_issuance_billing=False)
    rogue.host.set_tariff(supplier.tariff_message(tariff))
    for n in range(3):
        rogue.live_day(start + dt.timedelta(days=n))
    report.check("bill from an unapproved tariff applet rejected", "rejected", _fails(
        lambda: supplier.receive_bill(rogue.host.close_period(start, start + dt.timedelta(2))),
        StatementRejected))

    # the channels, the loaded billing code and where the data came from
    sessions = {p: c.sessions for p, c in host.parties.items()}
    intruder = PartyChannel(WanPartyLink(parties.wan, home.hub_eui, "supplier").transmit,
                            TELEHEALTH, home.setup.channel_keys("supplier"),
                            channel=PARTY_LOGICAL_CHANNEL)
    report.check("each party drives its applet only over its own SSD's SCP03 channel",
                 ", ".join(f"{p}: {n}" for p, n in sessions.items()) + " sessions; the "
                 "supplier's keys open no channel to the telehealth applet",
                 all(n > 0 for n in sessions.values())
                 and _fails(lambda: intruder.call(INS_ENROL, SCALE), ChannelRefused))
    published = billing_package().manifest.source_hash
    billing_entry = next(e for e in host.card.runtime.load_file_entries()
                         if e.aid == BILLING.load_file_aid)
    report.check("billing applet loaded after issuance (issuer token, supplier DAP), "
                 "restricted; every bill names its published source hash",
                 f"source sha256 {published.hex()[:16]}...",
                 not billing_entry.rom and all(p["source-sha256"] == published
                                               for p in supplier.received))
    metered = home.meter.model.registers.active_import_wh
    truth_total = sum(d.total_import_wh for d in home.truth.values())
    report.check("applets fed from the ESME's half-hourly profile, read over the HAN",
                 f"{home.meter.reads} HAN profile reads; meter register {metered} Wh = "
                 f"household demand {truth_total} Wh", metered == truth_total
                 and home.meter.reads == days)

    # what the CSP saw: the parties' sessions as SCP03-protected APDUs only
    plaintexts = [tariff_message, *home.received, *(b for _, _, b in bills), comparison,
                  *disputed]
    party_frames = sum(1 for f in tap.frames if f.startswith(PARTY_FRAME_TAG))
    leaks = tap.leaks(plaintexts)
    report.check("party sessions over the WAN to the hub's virtual terminal; the CSP tap sees "
                 "only SCP03-protected bytes", f"{party_frames} frames tapped, {leaks} holding "
                 f"any 16 bytes of a tariff, bill, report or release in clear",
                 party_frames > 0 and leaks == 0 and home.hub.vt.relayed > 0)

    report.log = summarise_log(host.release_log())
    report.seconds = time.perf_counter() - began
    return report

"""Driving a home's devices with GBCS use cases, the way the DCC does, and checking answers.

:class:`UseCaseDriver` builds a command for a use case exactly as the DCC would send it:
the general-signing APDU from the requesting party (supplier, network operator, or the DCC's
access control broker for hub commands), signed by that party when the use case is critical,
then MAC'd by the ACB with the target device's key, and delivered over the WAN to the home's
hub. It returns the device's response and checks it like the party would (MAC or signature
with the device's keys, counter and addresses).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.dcc.inventory import DeviceRecord, DeviceType, Registration, SmiStatus, UserStatus
from smarthydra.dcc.responses import ResponseMappingError, response_message
from smarthydra.dcc.service import DccResponse
from smarthydra.duis.request import CommandVariant, ServiceRequest
from smarthydra.duis.xml import (
    DuisResponse,
    DuisSchema,
    DuisXmlError,
    build_request,
    build_signed_precommand_request,
    parse_xml,
    read_request,
    read_response,
)
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.axdr import Data, DataType, enum_value, long_unsigned, octet_string, structure
from smarthydra.gbcs.builder import build_precommand, sign_precommand
from smarthydra.gbcs.envelope import CraFlag, GbcsMessage, decode_message
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.esme_payloads import invoke_id
from smarthydra.gbcs.gbz import CONTROL_LAST, GbzComponent, GbzPayload, ReadAttributes, ZclHeader
from smarthydra.gbcs.xdlms import AccessRequest, CosemDescriptor, RequestKind, RequestSpecification
from smarthydra.parties.party import Party
from smarthydra.premises.esme import RemoteParty, TrustAnchorRole
from smarthydra.premises.esme_model import cosem_time
from smarthydra.premises.gpf import GasProxy, GasProxyFunction, install_gas, push_mirror
from smarthydra.premises.gsme import BatteryProjection, GasMeter
from smarthydra.premises.hub import CS14_MESSAGE_CODE, CommsHub, DeviceKind
from smarthydra.premises.ppmid import Ppmid
from smarthydra.premises.usecases import BY_NAME, Role, UseCase
from smarthydra.sim.household import SLOTS, Household, generate_day
from smarthydra.sim.world import (
    ACB_EUI,
    NETWORK_OPERATOR_EUI,
    START,
    SUPPLIER_EUI,
    Home,
    World,
    _remote_party,
    build_world,
    in_memory_keystores,
)

KA_LABEL = "ka"
DS_LABEL = "ds"


class DriverError(Exception):
    """The use case could not be sent or its answer does not check out."""


@dataclass(frozen=True)
class Exchange:
    use_case: UseCase
    command: bytes
    response: GbcsMessage | None
    counter: int


# The DCC's own originator counter for hub commands, one per world (devices keep floors).
_ACB_COUNTERS: dict[int, int] = {}


@dataclass
class UseCaseDriver:
    world: World

    def next_acb_counter(self) -> int:
        key = id(self.world.dcc)
        _ACB_COUNTERS[key] = _ACB_COUNTERS.get(key, 0x1000) + 1
        return _ACB_COUNTERS[key]

    def _sender(self, spec: UseCase, role: Role | None) -> tuple[bytes, Keystore | None, int]:
        chosen = role or next(iter(sorted(spec.roles)))
        if chosen is Role.SUPPLIER:
            party = self.world.supplier
        elif chosen is Role.NETWORK_OPERATOR:
            party = self.world.network_operator
        elif chosen is Role.ACCESS_CONTROL_BROKER:
            return self.world.dcc.acb.eui.value, None, self.next_acb_counter()
        else:
            raise DriverError(f"no party in this world plays role {chosen.name}")
        party.counter += 1
        return party.eui.value, party.keystore, party.counter

    def send(
        self,
        home: Home,
        use_case: str,
        payload: bytes,
        *,
        target: Eui64 | None = None,
        target_key: ec.EllipticCurvePublicKey | None = None,
        role: Role | None = None,
    ) -> Exchange:
        spec = BY_NAME.get(use_case)
        if spec is None:
            raise DriverError(f"unknown use case {use_case}")
        device = target or home.esme.eui
        key = target_key
        if key is None:
            record = self.world.dcc.inventory.device(device)
            if record is None:
                raise DriverError(f"device {device} is not in the inventory")
            key = record.key_agreement_key
        originator, keystore, counter = self._sender(spec, role)
        command = build_precommand(
            originator=originator,
            recipient=device.value,
            counter=counter,
            message_code=spec.code,
            payload=payload,
        )
        if spec.critical:
            if keystore is None:
                raise DriverError(f"{use_case} is critical and needs a signing party")
            command = sign_precommand(command, keystore=keystore, label=DS_LABEL)
        wire = self.world.dcc.acb.mac_command(command, key)
        answer = self.world.wan.deliver(home.hub.eui, wire)
        if answer is None:
            return Exchange(spec, wire, None, counter)
        try:
            message = decode_message(answer)
        except GbcsError as exc:
            raise DriverError(f"response does not parse: {exc}") from None
        if (message.cra_flag is not CraFlag.RESPONSE or message.recipient != originator
                or message.originator_counter != counter):
            raise DriverError("response does not answer this command")
        return Exchange(spec, wire, message, counter)

    def verify(self, exchange: Exchange, device_ka: ec.EllipticCurvePublicKey,
               device_ds: ec.EllipticCurvePublicKey | None, keystore: Keystore) -> None:
        """Check the response's MAC (or signature) as the requesting party would."""
        message = exchange.response
        if message is None:
            raise DriverError("no response")
        if message.is_macd:
            z = keystore.derive_shared_secret(KA_LABEL, device_ka)
            if not security.verify_mac(security.message_mac_key(z, message), message):
                raise DriverError("response MAC does not verify")
        elif device_ds is None or not security.verify_signature(message, device_ds):
            raise DriverError("response signature does not verify")


# --- gas: a GSME and the hub's gas proxy function ---------------------------------------------

FIRST_GSME = 0x00DB123456790000
FIRST_GPF = 0x00DB123456791000


@dataclass
class GasInstallation:
    gsme: GasMeter
    proxy: GasProxy

    @property
    def gpf(self) -> GasProxyFunction:
        return self.proxy.function


def _device_keys(world: World, eui: Eui64, keystore: Keystore | None) -> Keystore:
    """A device's GBCS key pairs (``ka``, ``ds``), their SMKI device certificates published."""
    keys = keystore or in_memory_keystores(f"device-{eui}")
    for label, usage in ((KA_LABEL, KeyUsage.KEY_AGREEMENT), (DS_LABEL, KeyUsage.DIGITAL_SIGNATURE)):
        if label not in keys:
            keys.generate(label, usage)
        certificate = world.smki.issue_device(
            subject_public_key=keys.public_key(label), eui64=eui.value, usage=usage,
            not_before=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
        world.repository.publish(certificate)
    for ca in world.smki.ca_certificates:
        world.repository.publish(ca)
    return keys


def _trust_anchors(world: World) -> tuple[list[RemoteParty], RemoteParty]:
    """The supplier and network operator a device trusts, and the ACB, from the repository."""
    now = world.clock.now()
    anchors = [
        _remote_party(world.repository, SUPPLIER_EUI, TrustAnchorRole.SUPPLIER, now,
                      world.supplier_top_up),
        _remote_party(world.repository, NETWORK_OPERATOR_EUI, TrustAnchorRole.NETWORK_OPERATOR,
                      now),
    ]
    acb = _remote_party(world.repository, ACB_EUI, TrustAnchorRole.ACCESS_CONTROL_BROKER, now)
    return anchors, acb


def add_gas(world: World, home: Home, *, keystore: Keystore | None = None) -> GasInstallation:
    """Commission a gas meter in ``home``: keys, certificates, inventory, HAN join, GPF."""
    gsme_eui = Eui64.from_int(FIRST_GSME + home.index)
    gpf_eui = Eui64.from_int(FIRST_GPF + home.index)
    keys = _device_keys(world, gsme_eui, keystore or in_memory_keystores(f"gsme-{gsme_eui}"))
    anchors, acb = _trust_anchors(world)
    gsme = GasMeter(gsme_eui, keys, world.clock, acb=acb, remote_parties=list(anchors))
    function = GasProxyFunction(gpf_eui, home.hub, world.clock, acb=acb,
                                remote_parties=list(anchors))
    proxy = install_gas(home.hub, gsme, function)
    mprn = f"{7000000000 + home.index:010d}"
    inventory = world.dcc.inventory
    inventory.add_device(DeviceRecord(gsme_eui, DeviceType.GSME, home.hub.eui, mprn,
                                      keys.public_key(KA_LABEL), SmiStatus.COMMISSIONED))
    inventory.add_device(DeviceRecord(gpf_eui, DeviceType.GAS_PROXY, home.hub.eui, mprn,
                                      home.hub.gpf_key_agreement_key, SmiStatus.COMMISSIONED))
    # The world's supplier supplies gas too: it holds the gas supplier role and is registered
    # for the MPRN, so its DUIS requests for the gas meter pass the DCC's ownership check.
    supplier = world.dcc.users.get(world.supplier.eui)
    if supplier is not None:
        supplier.roles.setdefault("GS", UserStatus.ACTIVE)
    inventory.register(Registration(mprn, "GS", world.supplier.eui, START))
    return GasInstallation(gsme, proxy)


FIRST_PPMID = 0x00DB123456792000


def add_ppmid(world: World, home: Home, *, keystore: Keystore | None = None) -> Ppmid:
    """Commission a GBCS-capable prepayment interface device in ``home``: keys and
    certificates, the inventory (under the home's MPAN, with its hub), and the hub's device
    log and HAN link (install code), so that SRV 11.2 / 11.3 reach it through the hub."""
    eui = Eui64.from_int(FIRST_PPMID + home.index)
    existing = home.hub.han.get(eui)
    if existing is not None and isinstance(existing.device, Ppmid):
        return existing.device
    keys = _device_keys(world, eui, keystore)
    anchors, acb = _trust_anchors(world)
    ppmid = Ppmid(eui, keys, world.clock, acb=acb, remote_parties=anchors)
    home.hub.join(ppmid, kind=DeviceKind.PPMID)
    world.dcc.inventory.add_device(DeviceRecord(eui, DeviceType.PPMID, home.hub.eui, home.mpan,
                                                keys.public_key(KA_LABEL),
                                                SmiStatus.COMMISSIONED))
    return ppmid


def enrol_hub(world: World, home: Home) -> DeviceRecord:
    """Put ``home``'s comms hub function in the DCC's inventory (under the home's MPAN), so
    that hub service requests (8.11 device log, 11.2 firmware version) reach it over DUIS."""
    inventory = world.dcc.inventory
    existing = inventory.device(home.hub.eui)
    if existing is not None:
        return existing
    record = DeviceRecord(home.hub.eui, DeviceType.COMMS_HUB, home.hub.eui, home.mpan,
                          home.hub.key_agreement_key, SmiStatus.COMMISSIONED)
    inventory.add_device(record)
    return record


# --- replacing a comms hub (CCS03, 8.12.1) -----------------------------------------------------

FIRST_REPLACEMENT_HUB = 0x00DB123456794000
FIRST_REPLACEMENT_GPF = 0x00DB123456795000


def forward_device_log_backups(world: World, home: Home) -> int:
    """The hub's device log backup alerts (CS14) reach the DCC, which keeps the latest backup
    for a restore on a replacement hub: those already raised now, later ones as they come.
    Returns how many were delivered now."""
    hub = home.hub
    dcc = world.dcc

    def is_backup(alert: bytes) -> bool:
        try:
            return decode_message(alert).message_code == CS14_MESSAGE_CODE
        except GbcsError:
            return False

    delivered = 0
    for alert in hub.alerts:
        if is_backup(alert):
            dcc.record_han_backup(hub.eui, alert)
            delivered += 1
    previous = hub.alert_sink

    def sink(alert: bytes) -> None:
        if is_backup(alert):
            dcc.record_han_backup(hub.eui, alert)
        if previous is not None:
            previous(alert)

    hub.alert_sink = sink
    return delivered


@dataclass(frozen=True)
class HubReplacement:
    """A failed hub swapped for a new one: the devices have not rejoined yet; the DCC
    restores the old hub's device log on the new one (8.12.1), then :func:`rejoin_devices`."""

    old: CommsHub
    new: CommsHub


def replace_hub(world: World, home: Home, *, gas: GasInstallation | None = None) -> HubReplacement:
    """Install a replacement comms hub (a new CHF, and a new GPF in front of ``gas``'s meter)
    in ``home``: on the WAN in the old one's place, in the inventory with the home's devices
    now behind it, its device log empty until the DCC restores it (8.12.1 / CCS03)."""
    old = home.hub
    inventory = world.dcc.inventory
    new = CommsHub(Eui64.from_int(FIRST_REPLACEMENT_HUB + home.index), world.clock, acb=old.acb)
    new.health_sink = old.health_sink
    world.wan.disconnect(old.eui)
    world.wan.connect(new.eui, new)
    for record in inventory.devices():
        if record.hub == old.eui and record.eui != old.eui:
            record.hub = new.eui
    if inventory.device(old.eui) is not None:
        inventory.set_status(old.eui, SmiStatus.DECOMMISSIONED)
    home.hub = new
    enrol_hub(world, home)
    if gas is not None:
        old_gpf = gas.gpf.eui
        anchors, acb = _trust_anchors(world)
        function = GasProxyFunction(Eui64.from_int(FIRST_REPLACEMENT_GPF + home.index), new,
                                    world.clock, acb=acb, remote_parties=anchors)
        gas.proxy = GasProxy(new, gas.gsme.eui, function)
        new.gas_meter, new.gas_proxy_eui, new.gas_proxy = gas.gsme.eui, function.eui, gas.proxy
        gsme = inventory.device(gas.gsme.eui)
        mpxn = gsme.mpxn if gsme is not None else home.mpan
        inventory.add_device(DeviceRecord(function.eui, DeviceType.GAS_PROXY, new.eui, mpxn,
                                          new.gpf_key_agreement_key, SmiStatus.COMMISSIONED))
        if inventory.device(old_gpf) is not None:
            inventory.set_status(old_gpf, SmiStatus.DECOMMISSIONED)
    return HubReplacement(old, new)


def rejoin_devices(replacement: HubReplacement) -> list[Eui64]:
    """The old hub's devices look for their network (the same extended PAN id) and rejoin it
    with the link keys they hold. The hub takes only those its restored device log names
    with that key; returns the devices that rejoined."""
    old, new = replacement.old, replacement.new
    if new.extended_pan_id != old.extended_pan_id:
        return []  # not their network: nothing to rejoin
    return [eui for eui, attachment in old.han.items()
            if new.rejoin(attachment.device, attachment.link.link_key, attachment.kind)]


# --- running a home day by day ------------------------------------------------------------------

DAILY_LOG = bytes.fromhex("0000620109FF")  # 0-0:98.1.9.255, the daily read log


def daily_log_request(counter: int, requester: bytes, meter: bytes, start: dt.datetime,
                      end: dt.datetime) -> bytes:
    """The ECS21a payload a supplier sends: a protected read of the daily log over a range."""
    protected_object = structure(
        long_unsigned(7), octet_string(DAILY_LOG), Data(DataType.INTEGER, 2), long_unsigned(0),
        structure(enum_value(1), structure(octet_string(cosem_time(start)),
                                           octet_string(cosem_time(end)))),
    )
    protection = structure(
        enum_value(2),
        structure(octet_string(b"\x04" + counter.to_bytes(8, "big")), octet_string(requester),
                  octet_string(meter), octet_string(b""),
                  structure(enum_value(2), structure(octet_string(b"\x02"), octet_string(b"")))),
    )
    return AccessRequest(
        invoke_id(counter), None,
        [RequestSpecification(RequestKind.ACTION, DATA_PROTECTION_DAILY)],
        [structure(Data(DataType.ARRAY, [protected_object]), Data(DataType.ARRAY, [protection]))],
    ).encode()


DATA_PROTECTION_DAILY = CosemDescriptor(30, bytes.fromhex("00002B0205FF"), 1)


@dataclass(frozen=True)
class DaySummary:
    date: dt.date
    import_kwh: float
    export_kwh: float
    gas_m3: float
    peak_w: int
    meter_balance_gbp: float
    supply: str
    daily_log_response_bytes: int


def simulate(world: World, home: Home, household: Household, days: int, *,
             gas: GasInstallation | None = None, read_daily_log: bool = True) -> list[DaySummary]:
    """Run ``home`` for ``days`` days of ``household`` demand on the world's clock.

    Each half hour feeds the meters (and the gas meter's push to the GPF); each day ends with
    the meters' daily logs and, with ``read_daily_log``, the supplier's ECS21a read of it
    end to end (WAN, hub, HAN, meter, and the MAC'd, encrypted response).
    """
    driver = UseCaseDriver(world)
    model = home.esme.model
    out: list[DaySummary] = []
    for _ in range(days):
        start = world.clock.now()
        demand = generate_day(household, start.date())
        gas_before = gas.gsme.gas.volume_m3_thousandths if gas else 0
        peak = 0
        for slot in range(SLOTS):
            world.clock.advance(dt.timedelta(minutes=30))
            model.consume(demand.import_wh[slot], demand.reactive_varh[slot], demand.export_wh[slot])
            model.end_of_half_hour(demand.voltage_v[slot])
            peak = max(peak, demand.import_wh[slot] * 2)
            if gas is not None:
                gas.gsme.consume(demand.gas_litres[slot])
                gas.gsme.end_of_half_hour()
                push_mirror(home.hub, gas.gsme)
        model.end_of_day()
        if gas is not None:
            gas.gsme.end_of_day()
        size = 0
        if read_daily_log:
            counter = world.supplier.counter + 1
            # the day's entry only (the previous day's is stamped at this day's start)
            payload = daily_log_request(counter, world.supplier.eui.value, home.esme.eui.value,
                                        start + dt.timedelta(seconds=1), world.clock.now())
            exchange = driver.send(home, "ECS21a", payload)
            size = len(exchange.response.wire()) if exchange.response is not None else 0
        out.append(DaySummary(
            start.date(),
            demand.total_import_wh / 1000,
            sum(demand.export_wh) / 1000,
            ((gas.gsme.gas.volume_m3_thousandths - gas_before) / 1000) if gas else 0.0,
            peak,
            model.tariff.to_gbp(model.credit.meter_balance),
            model.supply.value,
            size,
        ))
    return out


# --- the gas meter's battery, measured on real traffic ----------------------------------------

# GCS33: read the Metering cluster's battery level (0x0205) and supply status (0x0014)
GCS33_READ_SUPPLY_STATUS = GbzPayload(1, (GbzComponent(
    CONTROL_LAST, 0x0702, ZclHeader(0x00, 0, 0x00), ReadAttributes((0x0205, 0x0014))),)).encode()


@dataclass(frozen=True)
class FloodMeasurement:
    reads_sent: int
    reads_reaching_meter: int
    joules: float
    projection: BatteryProjection


def measure_gas_day(flood_reads: int, *, with_gpf: bool, seed: int = 1) -> FloodMeasurement:
    """One simulated day of a gas meter: half-hourly pushes to the GPF, one daily read, and
    ``flood_reads`` extra reads (GCS33) sent through the DCC path; the gas meter's ledger
    counts every radio and crypto operation it performs, and the day is projected to years.
    Without the GPF's protection every read reaches the meter."""
    world = build_world(homes=1, seed=seed)
    home = world.home(0)
    gas = add_gas(world, home)
    if not with_gpf:
        gas.proxy.configure(max_age_s=1800, reads_per_day=0xFFFF)
    driver = UseCaseDriver(world)
    spent_before = gas.gsme.energy.spent_joules
    reads_per_slot = [flood_reads // 48 + (1 if n < flood_reads % 48 else 0) for n in range(48)]
    reached = 0
    for slot in range(48):  # 00:00 to 23:30 of one day
        gas.gsme.consume(30)
        gas.gsme.end_of_half_hour()
        push_mirror(home.hub, gas.gsme)
        for _ in range(reads_per_slot[slot] + (1 if slot == 47 else 0)):
            exchange = driver.send(home, "GCS33", GCS33_READ_SUPPLY_STATUS, target=gas.gsme.eui)
            reached += exchange.response is not None
        if slot < 47:
            world.clock.advance(dt.timedelta(minutes=30))
    gas.gsme.end_of_day()
    joules = gas.gsme.energy.spent_joules - spent_before
    return FloodMeasurement(flood_reads + 1, reached, joules, BatteryProjection.from_daily(joules))


# --- a DCC user's DUIS round trip, XML to XML -----------------------------------------------------


class DuisRoundTripError(Exception):
    """The DUIS request was refused, or its answer is not a checked device response."""


@dataclass(frozen=True)
class DuisRoundTrip:
    """One service request from XML to XML: the request as sent (schema-valid, CV 1 or 4),
    the DCC's final answer, the DUIS ``ResponseMessage`` the DCC sends back (schema-valid)
    and the device's GBCS response parsed from its ``GBCSPayload``."""

    request: ServiceRequest
    request_xml: bytes
    dcc: DccResponse
    response_xml: bytes
    response: DuisResponse
    message: GbcsMessage


@dataclass
class DuisUser:
    """A DCC user on the DUIS path: writes the request from an XSD-shaped body, validates it,
    reads it back as the gateway does, submits it to the world's DataCommsCompany (for a
    critical service: CV 4, signs the pre-command, CV 5), maps the device's answer to the
    DUIS response, and checks that GBCS (originator, counter, MAC or signature)."""

    world: World
    schema: DuisSchema

    def _xml(self, root: etree._Element) -> bytes:
        self.schema.validate(root)
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    def submit(self, srv: str, target: Eui64, body: Mapping[str, object] | None = None, *,
               role: str = "IS", party: Party | None = None,
               execution: dt.datetime | None = None) -> tuple[ServiceRequest, bytes, DccResponse]:
        party = party or self.world.supplier
        variant = self.world.dcc.matrix.get(srv)
        if variant is None:
            raise DuisRoundTripError(f"no service request variant {srv}")
        cv = (CommandVariant.CRITICAL_TRANSFORM if variant.critical
              else CommandVariant.NON_CRITICAL_TO_DEVICE)
        parameters = dict(body or {})
        if execution is not None:
            parameters = {"ExecutionDateTime": xs_datetime(execution), **parameters}
        request_id = party.next_request_id(target)
        request_xml = self._xml(build_request(request_id, cv, srv, parameters))
        request = read_request(parse_xml(request_xml)).to_service_request(party.eui, role)
        response = self.world.dcc.submit(request)
        if not response.ok:
            raise DuisRoundTripError(f"{srv}: the DCC answered {response.code.value}: "
                                     f"{response.detail}")
        if variant.critical:
            if response.gbcs is None:
                raise DuisRoundTripError(f"{srv}: no pre-command")
            signed = sign_precommand(response.gbcs, keystore=party.keystore, label=DS_LABEL)
            signed_xml = self._xml(build_signed_precommand_request(
                request_id, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, srv, signed.wire(),
                execution))
            again = read_request(parse_xml(signed_xml))
            response = self.world.dcc.submit_signed(again.to_signed_precommand(party.eui, role))
            if not response.ok:
                raise DuisRoundTripError(f"{srv}: the signed pre-command was refused: "
                                         f"{response.code.value}: {response.detail}")
        return request, request_xml, response

    def send(self, srv: str, target: Eui64, body: Mapping[str, object] | None = None, *,
             role: str = "IS", party: Party | None = None,
             execution: dt.datetime | None = None) -> DuisRoundTrip:
        party = party or self.world.supplier
        request, request_xml, dcc = self.submit(srv, target, body, role=role, party=party,
                                                execution=execution)
        if dcc.gbcs is None:
            raise DuisRoundTripError(f"{srv}: no device response ({dcc.detail})")
        try:
            root = response_message(dcc.gbcs, service_reference_variant=srv,
                                    at=self.world.clock.now(), request_id=request.request_id,
                                    schema=self.schema)
            response_xml = bytes(etree.tostring(root))
            response = read_response(parse_xml(response_xml))
            if response.gbcs is None:
                raise DuisRoundTripError(f"{srv}: the DUIS response carries no GBCSPayload")
            message = decode_message(response.gbcs)
        except (GbcsError, ResponseMappingError, DuisXmlError) as exc:
            raise DuisRoundTripError(f"{srv}: {exc}") from None
        self.check(message, request, target, party)
        return DuisRoundTrip(request, request_xml, dcc, response_xml, response, message)

    def check(self, message: GbcsMessage, request: ServiceRequest, device: Eui64,
              party: Party) -> None:
        """The response is from ``device`` and answers this request; its MAC (or, for a
        critical use case, its signature) verifies. A command the DCC sent in its own name
        (8.11) is answered to the ACB, which checks it."""
        if message.cra_flag is not CraFlag.RESPONSE or message.originator != device.value:
            raise DuisRoundTripError("the response is not from the target device")
        if message.recipient == self.world.dcc.acb.eui.value:
            return
        if (message.recipient != party.eui.value
                or message.originator_counter != request.request_id.counter):
            raise DuisRoundTripError("the response does not answer this request")
        record = self.world.dcc.inventory.device(device)
        if record is None:
            raise DuisRoundTripError(f"{device} is not in the inventory")
        if message.is_macd:
            z = party.keystore.derive_shared_secret(KA_LABEL, record.key_agreement_key)
            if not security.verify_mac(security.message_mac_key(z, message), message):
                raise DuisRoundTripError("the response MAC does not verify")
            return
        keys = party.devices(device)
        if keys is None or not security.verify_signature(message, keys.signing_key):
            raise DuisRoundTripError("the response signature does not verify")


def xs_datetime(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

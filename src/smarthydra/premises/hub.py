"""The Hydra communications hub: WAN on one side, the HAN on the other, a secure element inside.

Every function of the hub is an applet on its secure element (:mod:`.hub_applets`); the
:class:`VirtualTerminal` is the only way the hub's host reaches them (SELECT by AID, then the
applet's APDUs), and it routes every WAN and HAN message to the applet that serves it:

- a WAN message for the CHF itself (CCS01/02/03) is checked (ACB MAC, anti-replay)
  and served over the CHF applet's device log; each change raises a CS14 alert to the DCC;
- a WAN message for a HAN device (the electricity meter, a GBCS-capable PPMID answering
  CS08 / CS06) is routed only if the CHF applet finds the device in its log; the applet
  seals it with that device's link key, and opens the device's answer;
- a WAN message for the gas meter goes to the gas proxy function (:mod:`.gpf`);
- a HAN frame from a device not in the log, or one failing link security (MIC, replayed
  frame counter), is dropped and logged, and changes nothing.

Routing reads only the GBCS header; the devices do their own GBCS security checks.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.card.apdu import SW, CommandAPDU, ResponseAPDU
from smarthydra.card.card import Card
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.rng import DeterministicRandom
from smarthydra.clock import Clock
from smarthydra.crypto.primitives import public_key_from_xy, public_key_to_xy
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.axdr import BitString, Data, DataType, array, octet_string, structure
from smarthydra.gbcs.builder import build_alert, build_response
from smarthydra.gbcs.envelope import SECURITY_CONTROL_MAC, CraFlag, decode_message, parse_mac_header
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.gbz import ReadAttributesResponse, decode_zcl_body
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    DataAccessResult,
    DataNotification,
    decode_xdlms,
)
from smarthydra.premises.cosem import CosemError, CosemServer, require_type
from smarthydra.premises.der_cases import (
    DeviceFirmware,
    FirmwareImage,
)
from smarthydra.premises.esme import ElectricityMeter, RemoteParty
from smarthydra.premises.esme_model import GBCS_EPOCH, cosem_time
from smarthydra.premises.han import HanLink, HanSecurityError, link_key_from_install_code
from smarthydra.premises.hub_applets import CHF_AID, CLA, GPF_AID, ChfIns, GpfIns, hydra_profile
from smarthydra.premises.inhome import (
    CONSUMER_DATA_TAG,
    HEALTH_TAG,
    PPMID_EMERGENCY_CREDIT,
    PPMID_TAG,
    PPMID_TOP_UP,
    ConsumerData,
    HanClient,
    HealthReading,
)
from smarthydra.premises.usecases import Role, Target, use_case

if TYPE_CHECKING:
    from smarthydra.premises.anchors import DeviceTrustAnchors

MIRROR_TAG = b"\xe1GPF"  # a HAN frame from the gas meter carrying its data for the GPF
ANNOUNCE_TAG = b"\xe5ANN"  # a device rejoining a restored HAN announces its type
CS14_MESSAGE_CODE = 0x0018
CS14_ALERT_CODE = 0x8F12
CHF_OBJECT = "0-0:30.3.0.255"  # ZigBee network control (class 104)


class DeviceKind(enum.IntEnum):
    """Device types in the CHF device log (as CCS01 codes them)."""

    ESME = 0
    GSME = 1
    PPMID = 2
    IHD = 3
    CAD = 4
    HCALCS = 5
    TYPE_2 = 6


class HanDevice(Protocol):
    eui: Eui64

    def receive(self, wire: bytes) -> bytes | None: ...


class AppletRefused(Exception):
    """An applet answered with a status word other than 9000."""

    def __init__(self, aid: bytes, ins: int, sw: int) -> None:
        super().__init__(f"applet {aid.hex()} INS {ins:02X}: SW {sw:04X}")
        self.aid, self.ins, self.sw = aid, ins, sw


@dataclass
class VirtualTerminal:
    """The hub host's reader for its own secure element."""

    card: Card
    apdus: dict[bytes, int] = field(default_factory=dict)
    _selected: bytes | None = None
    relayed: int = 0  # APDUs passed through as received (parties' secure channels)

    def _send(self, command: CommandAPDU) -> ResponseAPDU:
        return ResponseAPDU.parse(self.card.transmit(command.encode()))

    def select(self, aid: bytes) -> None:
        if self._selected == aid:
            return
        response = self._send(CommandAPDU(0x00, 0xA4, 0x04, 0x00, aid, 0))
        if response.sw != SW.OK:
            raise AppletRefused(aid, 0xA4, response.sw)
        self._selected = aid

    def relay(self, command: bytes) -> bytes:
        """Pass an APDU to the card as received (a party's, on the party logical channel of
        :mod:`smarthydra.applets.party_wan`); the host can read no more of it than its header."""
        self.relayed += 1
        return self.card.transmit(command)

    def call(self, aid: bytes, ins: int, data: bytes = b"") -> bytes:
        self.select(aid)
        self.apdus[aid] = self.apdus.get(aid, 0) + 1
        response = self._send(CommandAPDU(CLA, ins, 0, 0, data, 65536))
        if response.sw != SW.OK:
            raise AppletRefused(aid, ins, response.sw)
        return response.data


@dataclass
class HanAttachment:
    """A device on the HAN, with its end of the link to the hub."""

    device: HanDevice
    link: HanLink
    kind: DeviceKind

    def deliver(self, frame: bytes, hub: bytes) -> bytes | None:
        try:
            plaintext = self.link.open(frame, hub)
        except HanSecurityError:
            return None
        response = self.device.receive(plaintext)
        return None if response is None else self.link.seal(response)


@dataclass(frozen=True)
class HubLogEntry:
    at: datetime
    event: str
    device: bytes | None


@dataclass
class DeviceLogRecord:
    eui: Eui64
    kind: DeviceKind


class PartyPort(Protocol):
    """Where the hub sends the WAN frames that carry value-added parties' APDUs."""

    def accepts(self, message: bytes) -> bool: ...

    def receive_from_wan(self, message: bytes) -> bytes | None: ...


class GasProxyPort(Protocol):
    def receive_from_wan(self, message: bytes) -> bytes | None: ...

    def accept_mirror(self, snapshot: bytes, taken_at: datetime) -> None: ...


class CommsHub:
    def __init__(
        self,
        eui: Eui64,
        clock: Clock,
        *,
        acb: RemoteParty | None = None,
        card: Card | None = None,
        alert_sink: Callable[[bytes], None] | None = None,
    ) -> None:
        self.eui = eui
        self.clock = clock
        self.card = card or Card(
            MemoryBacking(), hydra_profile(eui.value), rng=DeterministicRandom(b"hub" + eui.value)
        )
        self.card.power_on()
        self.vt = VirtualTerminal(self.card)
        self.vt.call(CHF_AID, ChfIns.GENERATE_KA)
        self.vt.call(GPF_AID, ChfIns.GENERATE_KA)
        self.acb = acb  # the DCC's access control broker, as the hub trusts it
        self.alert_sink = alert_sink
        self.han: dict[Eui64, HanAttachment] = {}
        self.gas_proxy: GasProxyPort | None = None
        self.gas_meter: Eui64 | None = None
        self.gas_proxy_eui: Eui64 | None = None
        self.gas_mirror_updates = 0
        self.log: list[HubLogEntry] = []
        self.alerts: list[bytes] = []
        self.anti_replay_floor: dict[bytes, int] = {}
        self._alert_counter = 0
        self._install_codes = 0
        self.health_sink: Callable[[HealthReading], None] | None = None
        # The HAN's extended PAN id: reported in each device log backup (CS14) and adopted from
        # a restore (CCS03), so a replacement hub runs the same network as the one it replaces.
        self.extended_pan_id = hashlib.sha256(b"extended-pan-id" + eui.value).digest()[:8]
        self.chf_server = self._chf_objects()
        # The CHF's trust-anchor cells (WAN provider among them) and its CS02b processing.
        self.anchors: DeviceTrustAnchors | None = None
        # Hydra parties' secure-channel APDUs from the WAN (smarthydra.applets.party_wan):
        # frames it accepts go to it, not to GBCS routing.
        self.party_port: PartyPort | None = None
        # Hydra value-added answers to WAN commands for HAN devices (an Other User's
        # consumption-log read answered by the price-comparison applet): given the command
        # and the device's answer (None: it gave none), what goes back over the WAN.
        self.value_added: Callable[[bytes, bytes | None], bytes | None] | None = None

    # --- keys -----------------------------------------------------------------------------

    @property
    def key_agreement_key(self) -> ec.EllipticCurvePublicKey:
        """The CHF's GBCS key-agreement key (generated in the secure element)."""
        return public_key_from_xy(self.vt.call(CHF_AID, ChfIns.PUBLIC_KA))

    @property
    def gpf_key_agreement_key(self) -> ec.EllipticCurvePublicKey:
        return public_key_from_xy(self.vt.call(GPF_AID, ChfIns.PUBLIC_KA))

    def _z(self, aid: bytes, peer: ec.EllipticCurvePublicKey) -> bytes:
        return self.vt.call(aid, ChfIns.ECDH, public_key_to_xy(peer))

    def _note(self, event: str, device: bytes | None) -> None:
        self.log.append(HubLogEntry(self.clock.now(), event, device))

    # --- the device log -------------------------------------------------------------------

    def device_log(self) -> list[DeviceLogRecord]:
        raw = self.vt.call(CHF_AID, ChfIns.LIST)
        return [DeviceLogRecord(Eui64(raw[i : i + 8]), DeviceKind(raw[i + 8]))
                for i in range(0, len(raw), 9)]

    def historic_device_log(self) -> list[DeviceLogRecord]:
        raw = self.vt.call(CHF_AID, ChfIns.HISTORY)
        return [DeviceLogRecord(Eui64(raw[i : i + 8]), DeviceKind(raw[i + 8]))
                for i in range(0, len(raw), 9)]

    def in_device_log(self, eui: Eui64) -> bool:
        try:
            self.vt.call(CHF_AID, ChfIns.LOOKUP, eui.value)
        except AppletRefused:
            return False
        return True

    def add_to_device_log(self, eui: Eui64, kind: DeviceKind, install_code: bytes) -> bool:
        """CCS01: whitelist a device with its install code. False if it was already there."""
        added = self.vt.call(CHF_AID, ChfIns.ADD, eui.value + bytes([kind]) + install_code)
        if added == b"\x01":
            return False
        self._note("device added to log", eui.value)
        self._raise_cs14()
        return True

    def remove_from_device_log(self, eui: Eui64) -> bool:
        """CCS02: remove a device; it moves to the historic device log."""
        try:
            self.vt.call(CHF_AID, ChfIns.REMOVE, eui.value)
        except AppletRefused:
            return False
        self.han.pop(eui, None)
        self._note("device removed from log", eui.value)
        self._raise_cs14()
        return True

    def join(self, device: HanDevice, install_code: bytes | None = None,
             kind: DeviceKind = DeviceKind.ESME) -> bytes:
        """Install a device: whitelist it and bring up its HAN link from the install code."""
        if install_code is None:
            # A fresh install code per device, as printed on it at manufacture.
            self._install_codes += 1
            install_code = hashlib.sha256(
                b"install-code" + device.eui.value + self._install_codes.to_bytes(4, "big")
            ).digest()[:16]
        if not self.in_device_log(device.eui):
            self.add_to_device_log(device.eui, kind, install_code)
        self.attach(device, install_code, kind)
        return install_code

    def attach(self, device: HanDevice, install_code: bytes, kind: DeviceKind) -> None:
        """The device joins the HAN with the link key its install code gives (CS03)."""
        link = HanLink(device.eui.value, link_key_from_install_code(install_code))
        self.han[device.eui] = HanAttachment(device, link, kind)
        if isinstance(device, HanClient):  # devices that speak first keep their end of the link
            device.pair(link, self.eui.value)
        self._note("device joined the HAN", device.eui.value)

    def rejoin(self, device: HanDevice, link_key: bytes, kind: DeviceKind) -> bool:
        """A device already in this hub's device log (restored by CCS03 on a replacement hub)
        rejoins with the link key it holds: its announce, sealed with that key, must open with
        the key the log holds; then the hub records the type it announced. False, and nothing
        changes, when the device is not in the log or its key is not the log's."""
        if device.eui in self.han or not self.in_device_log(device.eui):
            return False
        link = HanLink(device.eui.value, link_key)
        announce = ANNOUNCE_TAG + bytes([kind])
        if self._open(link.seal(announce)) != announce:
            return False
        self.vt.call(CHF_AID, ChfIns.SET_TYPE, device.eui.value + bytes([kind]))
        self.han[device.eui] = HanAttachment(device, link, kind)
        if isinstance(device, HanClient):
            device.pair(link, self.eui.value)
        self._note("device rejoined the HAN", device.eui.value)
        return True

    def remove(self, eui: Eui64) -> None:
        self.remove_from_device_log(eui)

    # --- WAN -------------------------------------------------------------------------------

    def receive_from_wan(self, message: bytes) -> bytes | None:
        if self.party_port is not None and self.party_port.accepts(message):
            return self.party_port.receive_from_wan(message)
        try:
            header = parse_mac_header(message)
        except GbcsError as exc:
            self._note(f"dropped malformed WAN frame: {exc}", None)
            return None
        recipient = Eui64(header.recipient)
        if recipient == self.eui:
            return self._chf_command(message)
        if recipient == self.gas_proxy_eui and self.gas_proxy is not None:
            return self.gas_proxy.receive_from_wan(message)
        if recipient == self.gas_meter and self.gas_proxy is not None:
            if not self.in_device_log(recipient):
                self._note("dropped: gas meter not in device log", recipient.value)
                return None
            return self.gas_proxy.receive_from_wan(message)
        if not self.in_device_log(recipient):
            self._note("dropped: recipient not in device log", recipient.value)
            return None
        answer = self.han_exchange(recipient, message)
        if self.value_added is not None:
            return self.value_added(message, answer)
        return answer

    def han_exchange(self, recipient: Eui64, plaintext: bytes) -> bytes | None:
        """Send over the HAN sealed with the device's link key; open its sealed answer."""
        attachment = self.han.get(recipient)
        if attachment is None:
            self._note("dropped: device in log but not on the HAN", recipient.value)
            return None
        frame = self.vt.call(CHF_AID, ChfIns.PROTECT, recipient.value + plaintext)
        answer = attachment.deliver(frame, self.eui.value)
        if answer is None:
            return None
        return self._open(answer)

    def _open(self, frame: bytes) -> bytes | None:
        try:
            return self.vt.call(CHF_AID, ChfIns.UNPROTECT, frame)
        except AppletRefused as exc:
            reasons: dict[int, str] = {
                SW.REFERENCED_DATA_NOT_FOUND: "source not in device log",
                SW.SECURITY_STATUS_NOT_SATISFIED: "HAN MIC does not verify",
                SW.CONDITIONS_NOT_SATISFIED: "HAN frame counter replayed",
            }
            reason = reasons.get(exc.sw, f"HAN frame refused (SW {exc.sw:04X})")
            self._note(f"dropped HAN frame: {reason}", frame[:8])
            return None

    # --- HAN (unsolicited: alerts, consumer devices) ---------------------------------------

    def transmit_from(self, eui: Eui64, plaintext: bytes) -> bytes | None:
        """A joined device sends on its own (an alert): sealed with its end of the link."""
        attachment = self.han.get(eui)
        if attachment is None:
            return None
        return self.receive_from_han(attachment.link.seal(plaintext))

    def receive_from_han(self, frame: bytes) -> bytes | None:
        """A frame a HAN device sent on its own; dropped and logged unless it is secure."""
        plaintext = self._open(frame)
        if plaintext is None:
            return None
        source = Eui64(frame[:8])
        if plaintext[:4] in (CONSUMER_DATA_TAG, PPMID_TAG, HEALTH_TAG):
            answer = self._in_home(source, plaintext[:4], plaintext[4:])
            if answer is None:
                return None
            return self.vt.call(CHF_AID, ChfIns.PROTECT, source.value + answer)
        if plaintext.startswith(MIRROR_TAG):
            if source != self.gas_meter or self.gas_proxy is None:
                self._note("dropped HAN frame: gas data from a device that is not the gas meter",
                           source.value)
                return None
            self.gas_proxy.accept_mirror(plaintext[len(MIRROR_TAG):], self.clock.now())
            self.gas_mirror_updates += 1
            return None
        try:
            message = decode_message(plaintext)
        except GbcsError:
            self._note("dropped HAN frame: not GBCS", source.value)
            return None
        if message.cra_flag is CraFlag.ALERT:
            self.alerts.append(plaintext)
            if self.alert_sink is not None:
                self.alert_sink(plaintext)
            self._note("alert forwarded to the WAN", source.value)
        return None

    # --- in-home devices -----------------------------------------------------------------

    def _kind_of(self, eui: Eui64) -> DeviceKind | None:
        try:
            return DeviceKind(self.vt.call(CHF_AID, ChfIns.LOOKUP, eui.value)[0])
        except AppletRefused:
            return None

    def _electricity_meter(self) -> ElectricityMeter | None:
        for attachment in self.han.values():
            if attachment.kind is DeviceKind.ESME and isinstance(attachment.device,
                                                                 ElectricityMeter):
                return attachment.device
        return None

    def consumer_data(self) -> ConsumerData:
        """The consumer's own data, from this home's meters (served locally, not via the DCC)."""
        gas_m3: float | None = None
        reliable: bool | None = None
        if self.gas_meter is not None:
            now = int((self.clock.now() - GBCS_EPOCH).total_seconds())
            copy = self.vt.call(GPF_AID, GpfIns.READ, now.to_bytes(4, "big"))
            reliable = bool(copy[0])
            # reliable(1) time(4), then what the GPF kept: clock base(1) meter time(4) records
            body = decode_zcl_body(0x08, 0x01, copy[10:]) if len(copy) > 10 else None
            if isinstance(body, ReadAttributesResponse):
                for record in body.records:
                    if record.attribute_id == 0 and record.value is not None:
                        assert isinstance(record.value.value, int)
                        gas_m3 = record.value.value / 1000
        esme = self._electricity_meter()
        if esme is None:
            return ConsumerData(self.clock.now(), 0, 0.0, 0.0, 0.0, "unknown", "unknown", gas_m3,
                                reliable)
        model = esme.model
        return ConsumerData(
            self.clock.now(), model.demand_w(), model.today_import_wh() / 1000,
            round(model.tariff.to_gbp(model.cost_today()), 2),
            round(model.tariff.to_gbp(model.credit.meter_balance), 2), model.supply.value,
            model.credit.mode.name.lower(), gas_m3, reliable,
        )

    def _in_home(self, source: Eui64, tag: bytes, body: bytes) -> bytes | None:
        kind = self._kind_of(source)
        if tag == CONSUMER_DATA_TAG and kind in (DeviceKind.IHD, DeviceKind.CAD,
                                                 DeviceKind.PPMID):
            return self.consumer_data().encode()
        if tag == PPMID_TAG and kind is DeviceKind.PPMID and body:
            esme = self._electricity_meter()
            if esme is None:
                return b"\x00"
            if body[0] == PPMID_EMERGENCY_CREDIT:
                return b"\x01" if esme.model.activate_emergency_credit() else b"\x00"
            if body[0] == PPMID_TOP_UP:
                try:
                    esme.model.enter_token(body[1:])
                except CosemError as exc:
                    self._note(f"PPMID top-up refused: {exc}", source.value)
                    return b"\x00"
                return b"\x01"
        if tag == HEALTH_TAG and kind is DeviceKind.TYPE_2:
            try:
                reading = HealthReading.decode(source, body)
            except HanSecurityError:
                return b"\x00"
            if self.health_sink is None:
                return b"\x00"
            self.health_sink(reading)
            return b"\x01"
        self._note("dropped HAN request: not allowed for this device type", source.value)
        return None

    # --- the comms hub function's own use cases --------------------------------------------

    def _chf_command(self, wire: bytes) -> bytes | None:
        header = parse_mac_header(wire)
        acb = self.acb
        if acb is None or header.security_control != SECURITY_CONTROL_MAC:
            self._note("dropped CHF command: no trusted ACB or bad security header", None)
            return None
        acb_ka = acb.key_agreement_key
        acb_eui = acb.eui.value
        z = self._z(CHF_AID, acb_ka)
        if header.cra_flag is not CraFlag.COMMAND or not security.verify_mac(
            security.message_mac_key(z, header), header
        ):
            self._note("dropped CHF command: ACB MAC does not verify", header.originator)
            return None
        try:
            message = decode_message(wire)
        except GbcsError as exc:
            self._note(f"dropped CHF command: {exc}", header.originator)
            return None
        if self.anchors is not None and self.anchors.handles(message.message_code):
            return self.anchors.process(message.general_signing, maced=True)  # CS02b
        spec = use_case(message.message_code)
        floor = self.anti_replay_floor.get(message.originator, -1)
        if message.originator != acb_eui or message.originator_counter <= floor:
            self._note("dropped CHF command: originator or counter", message.originator)
            return None
        self.anti_replay_floor[message.originator] = message.originator_counter
        if spec is None or spec.target is not Target.CHF or Role.ACCESS_CONTROL_BROKER not in (
            spec.roles
        ):
            self._note("refused CHF command: not a CHF use case", message.originator)
            return None
        try:
            request = decode_xdlms(message.payload)
        except GbcsError:
            request = None
        if not isinstance(request, AccessRequest):
            self._note("refused CHF command: payload is not an access-request", None)
            return None
        payload = self.chf_server.handle(request).encode()
        return build_response(
            device=self.eui.value,
            recipient=message.originator,
            counter=message.originator_counter,
            message_code=message.message_code,
            payload=payload,
            z=z,
        ).wire()

    def distribute_firmware(self, image: FirmwareImage, kind: DeviceKind) -> int:
        """CS05-style distribution: the image goes over the HAN to every device of ``kind``."""
        delivered = 0
        for attachment in self.han.values():
            firmware = getattr(attachment.device, "firmware", None)
            if attachment.kind is kind and isinstance(firmware, DeviceFirmware):
                firmware.receive(image)
                delivered += 1
        self._note(f"firmware {image.version.hex()} distributed to {delivered} devices", None)
        return delivered

    def _chf_objects(self) -> CosemServer:
        server = CosemServer()
        server.method(104, CHF_OBJECT, 1, self._register_device)
        server.method(104, CHF_OBJECT, 2, self._unregister_device)
        server.method(104, CHF_OBJECT, 5, self._restore_device_log)
        self.join_timeout = Data(DataType.LONG_UNSIGNED, 60)
        self.joining_allowed = Data(DataType.BOOLEAN, False)
        server.attribute(104, CHF_OBJECT, 3, lambda _s, _d: self.join_timeout,
                         self._set_join_timeout)
        server.attribute(104, CHF_OBJECT, 2, lambda _s, _d: self.joining_allowed,
                         self._set_joining)
        server.attribute(104, CHF_OBJECT, 4, self._device_log_attribute)
        return server

    def _set_join_timeout(self, value: Data) -> None:
        require_type(value, DataType.LONG_UNSIGNED)
        self.join_timeout = value

    def _set_joining(self, value: Data) -> None:
        require_type(value, DataType.BOOLEAN)
        self.joining_allowed = value

    def _register_device(self, value: Data) -> None:
        require_type(value, DataType.STRUCTURE)
        items = value.value
        assert isinstance(items, list)
        if len(items) < 3 or items[0].type is not DataType.OCTET_STRING or (
            items[2].type is not DataType.OCTET_STRING
        ):
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "register_device parameters")
        eui, kind, code = items[0].value, items[1].value, items[2].value
        assert isinstance(eui, bytes) and isinstance(code, bytes)
        if len(eui) != 8 or not isinstance(kind, int) or kind not in DeviceKind._value2member_map_:
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "device id or type")
        try:
            self.add_to_device_log(Eui64(eui), DeviceKind(kind), code)
        except AppletRefused as exc:
            raise CosemError(DataAccessResult.HARDWARE_FAULT, str(exc)) from None

    def _unregister_device(self, value: Data) -> None:
        require_type(value, DataType.OCTET_STRING)
        assert isinstance(value.value, bytes)
        if len(value.value) != 8 or not self.remove_from_device_log(Eui64(value.value)):
            raise CosemError(DataAccessResult.HARDWARE_FAULT, "not in the device log")

    def _restore_device_log(self, value: Data) -> None:
        """CCS03: rebuild the device log from a backup (device ids and link keys)."""
        require_type(value, DataType.STRUCTURE)
        items = value.value
        assert isinstance(items, list)
        if (len(items) != 2 or items[1].type is not DataType.ARRAY
                or items[0].type is not DataType.OCTET_STRING or not isinstance(items[0].value, bytes)
                or len(items[0].value) != 8):
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "restore parameters")
        entries = items[1].value
        assert isinstance(entries, list)
        self.extended_pan_id = items[0].value
        for entry in entries:
            fields = entry.value
            if not isinstance(fields, list) or len(fields) != 2:
                raise CosemError(DataAccessResult.TYPE_UNMATCHED, "restore entry")
            eui, key = fields[0].value, fields[1].value
            if not (isinstance(eui, bytes) and isinstance(key, bytes) and len(eui) == 8
                    and len(key) == 16):
                raise CosemError(DataAccessResult.TYPE_UNMATCHED, "restore entry")
            # The backup holds ids and keys only: a device's type is learned when it rejoins
            # (:meth:`rejoin`); until then it is allowed nothing beyond a meter's GBCS routing.
            attached = self.han.get(Eui64(eui))
            kind = attached.kind if attached is not None else DeviceKind.ESME
            try:
                self.vt.call(CHF_AID, ChfIns.RESTORE, eui + bytes([kind]) + key)
            except AppletRefused as exc:
                raise CosemError(DataAccessResult.HARDWARE_FAULT, str(exc)) from None
        self._note("device log restored", None)
        self._raise_cs14()

    def _device_log_attribute(self, _s: int | None, _d: Data | None) -> Data:
        """CCS05 / CCS06 read the device log: id, status flags and link quality per device."""
        rows = []
        for record in self.device_log():
            attached = record.eui in self.han
            rows.append(structure(
                octet_string(record.eui.value),
                Data(DataType.BIT_STRING, _status_bits(attached)),
                Data(DataType.INTEGER, -40), Data(DataType.INTEGER, -50), Data(DataType.INTEGER, -90),
                Data(DataType.UNSIGNED, 1), Data(DataType.UNSIGNED, 0), Data(DataType.UNSIGNED, 0),
                octet_string(cosem_time(self.clock.now())),
                Data(DataType.UNSIGNED, 1), Data(DataType.UNSIGNED, 0), Data(DataType.UNSIGNED, 100),
                Data(DataType.UNSIGNED, 1), Data(DataType.UNSIGNED, int(attached)),
            ))
        return array(*rows)

    def _raise_cs14(self) -> None:
        """CS14: the device log changed; the backup goes to the DCC (ACB) as an alert."""
        acb = self.acb
        if acb is None:
            return
        backup = self.vt.call(CHF_AID, ChfIns.BACKUP)
        entries = [structure(octet_string(backup[i : i + 8]), octet_string(backup[i + 8 : i + 24]))
                   for i in range(0, len(backup), 24)]
        now = cosem_time(self.clock.now())
        self._alert_counter += 1
        body = structure(
            Data(DataType.LONG_UNSIGNED, CS14_ALERT_CODE),
            octet_string(now),
            structure(octet_string(now), octet_string(self.extended_pan_id), array(*entries)),
        )
        counter = (0x1000 << 32) | self._alert_counter
        payload = DataNotification(0x20000000 | (counter & 0xFFFFFF), None, body).encode()
        z = self._z(CHF_AID, acb.key_agreement_key)
        alert = build_alert(device=self.eui.value, recipient=acb.eui.value,
                            counter=counter, message_code=CS14_MESSAGE_CODE, payload=payload,
                            z=z).wire()
        self.alerts.append(alert)
        if self.alert_sink is not None:
            self.alert_sink(alert)


def _status_bits(attached: bool) -> BitString:
    return BitString(8, bytes([0xC8 if attached else 0x48]))

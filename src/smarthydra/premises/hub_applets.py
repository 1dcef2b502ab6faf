"""The Hydra hub's functions as applets on its secure element.

Each function of the communications hub is an applet, reached only through APDUs (SELECT,
then the applet's commands), so a new service is a new applet, not new hardware:

- :class:`ChfApplet` - the comms hub function: the CHF device log (the HAN whitelist) with
  each device's link key (derived in the card from its install code), the historic device
  log, HAN frame protection with those keys, and the CHF's GBCS key-agreement key.
- :class:`GpfApplet` - the gas proxy function: the copy of the gas meter's data with the time
  it was taken, the battery budget for reads passed through to the gas meter, and the GPF's
  GBCS key-agreement key.

Link keys are kept in the applet's own persistent memory (the firewall keeps other applets
out) and never leave the card; the host sends plaintext and gets protected frames back.
"""

from __future__ import annotations

from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, Applet, ISOException, PersistentBytes, PersistentInt
from smarthydra.card.card import CardProfile
from smarthydra.card.registry import LoadFile
from smarthydra.card.runtime import CardManager
from smarthydra.premises.han import (
    HanFrame,
    HanSecurityError,
    link_key_from_install_code,
    protect,
    unprotect,
)

HYDRA_LOAD_FILE_AID = bytes.fromhex("F048594452410000")
CHF_MODULE_AID = bytes.fromhex("F04859445241000001")
GPF_MODULE_AID = bytes.fromhex("F04859445241000002")
CHF_AID = bytes.fromhex("F048594452410001")
GPF_AID = bytes.fromhex("F048594452410002")

CLA = 0x80
MAX_DEVICES = 16
_EUI = 8
_KEY = 16
_ENTRY = _EUI + 1 + _KEY + 4 + 4  # eui, device type, link key, incoming, outgoing counter
_HISTORIC = _EUI + 1


class ChfIns:
    ADD = 0x10  # eui(8) type(1) install code -> 00 added / 01 already in the log
    REMOVE = 0x12  # eui(8)
    LIST = 0x14  # -> (eui || type)*
    HISTORY = 0x16  # -> (eui || type)* of removed devices
    LOOKUP = 0x18  # eui(8) -> type(1)
    RESTORE = 0x1A  # eui(8) type(1) link key(16): CCS03 restore from a backup
    BACKUP = 0x1C  # -> (eui || link key)*: the CS14 device-log backup to the DCC
    SET_TYPE = 0x1E  # eui(8) type(1): a restored device announced its type on rejoining
    PROTECT = 0x20  # destination eui(8) || plaintext -> HAN frame
    UNPROTECT = 0x22  # HAN frame -> plaintext (source must be in the log)
    GENERATE_KA = 0x30  # -> public key x||y
    PUBLIC_KA = 0x32
    ECDH = 0x34  # peer x||y -> Z


class GpfIns:
    UPDATE = 0x40  # time(4) || snapshot: the gas meter pushed its data (the GPF keeps, as the
    # snapshot, clock base(1) || the meter's time(4) || its Metering records)
    READ = 0x42  # now(4) -> reliable(1) || time(4) || snapshot
    ADMIT = 0x44  # now(4) -> 01 a read may go to the gas meter / 00 answer from the copy
    CONFIGURE = 0x46  # max age(4) || reads per day(2)
    GENERATE_KA = 0x30
    PUBLIC_KA = 0x32
    ECDH = 0x34


class _KeyAgreement(Applet):
    """The GBCS key-agreement key of a hub function, generated in the card."""

    def __init__(self) -> None:
        self.ka = self.card.ec_key("ka")

    def key_command(self, apdu: APDU) -> bytes | None:
        if apdu.ins == ChfIns.GENERATE_KA:
            return self.ka.public_key() if self.ka.initialized else self.ka.generate()
        if apdu.ins == ChfIns.PUBLIC_KA:
            if not self.ka.initialized:
                raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "no key yet")
            return self.ka.public_key()
        if apdu.ins == ChfIns.ECDH:
            if not self.ka.initialized:
                raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "no key yet")
            return self.ka.ecdh(apdu.data)
        return None


class ChfApplet(_KeyAgreement):
    log = PersistentBytes(max_size=_ENTRY * MAX_DEVICES)
    historic = PersistentBytes(max_size=_HISTORIC * MAX_DEVICES)
    hub_eui = PersistentBytes(max_size=_EUI)

    def install(self, params: bytes) -> None:
        if len(params) != _EUI:
            raise ISOException(SW.WRONG_DATA, "install parameters: the hub's EUI-64")
        self.hub_eui = params

    def _entries(self) -> list[bytes]:
        raw = self.log
        return [raw[i : i + _ENTRY] for i in range(0, len(raw), _ENTRY)]

    def _find(self, eui: bytes) -> int:
        for index, entry in enumerate(self._entries()):
            if entry[:_EUI] == eui:
                return index
        return -1

    def _store(self, entries: list[bytes]) -> None:
        self.log = b"".join(entries)

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        if apdu.cla != CLA:
            raise ISOException(SW.CLA_NOT_SUPPORTED)
        handled = self.key_command(apdu)
        if handled is not None:
            return handled
        ins, data = apdu.ins, apdu.data
        if ins in (ChfIns.ADD, ChfIns.RESTORE):
            return self._add(ins, data)
        if ins == ChfIns.REMOVE:
            return self._remove(data)
        if ins == ChfIns.LIST:
            return b"".join(e[: _EUI + 1] for e in self._entries())
        if ins == ChfIns.HISTORY:
            return self.historic
        if ins == ChfIns.BACKUP:
            return b"".join(e[:_EUI] + e[_EUI + 1 : _EUI + 1 + _KEY] for e in self._entries())
        if ins == ChfIns.SET_TYPE:
            return self._set_type(data)
        if ins == ChfIns.LOOKUP:
            index = self._find(self._eui(data))
            if index < 0:
                raise ISOException(SW.REFERENCED_DATA_NOT_FOUND, "not in the device log")
            return self._entries()[index][_EUI : _EUI + 1]
        if ins == ChfIns.PROTECT:
            return self._protect(data)
        if ins == ChfIns.UNPROTECT:
            return self._unprotect(data)
        raise ISOException(SW.INS_NOT_SUPPORTED)

    @staticmethod
    def _eui(data: bytes) -> bytes:
        if len(data) != _EUI:
            raise ISOException(SW.WRONG_LENGTH, "an EUI-64 is 8 bytes")
        return data

    def _add(self, ins: int, data: bytes) -> bytes:
        if len(data) < _EUI + 2:
            raise ISOException(SW.WRONG_LENGTH, "eui, device type and key material")
        eui, device_type, material = data[:_EUI], data[_EUI], data[_EUI + 1 :]
        entries = self._entries()
        if self._find(eui) >= 0:
            return b"\x01"  # already in the log: GBCS says discard the key, change nothing
        if len(entries) >= MAX_DEVICES:
            raise ISOException(SW.NOT_ENOUGH_MEMORY, "the device log is full")
        if ins == ChfIns.RESTORE:
            if len(material) != _KEY:
                raise ISOException(SW.WRONG_DATA, "a link key is 16 bytes")
            key = material
        else:
            try:
                key = link_key_from_install_code(material)
            except HanSecurityError as exc:
                raise ISOException(SW.WRONG_DATA, str(exc)) from None
        entry = eui + bytes([device_type]) + key + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
        self._store([*entries, entry])
        return b"\x00"

    def _set_type(self, data: bytes) -> bytes:
        if len(data) != _EUI + 1:
            raise ISOException(SW.WRONG_LENGTH, "eui and device type")
        entries = self._entries()
        index = self._find(data[:_EUI])
        if index < 0:
            raise ISOException(SW.REFERENCED_DATA_NOT_FOUND, "not in the device log")
        entry = entries[index]
        entries[index] = entry[:_EUI] + data[_EUI:] + entry[_EUI + 1 :]
        self._store(entries)
        return b""

    def _remove(self, data: bytes) -> bytes:
        eui = self._eui(data)
        entries = self._entries()
        index = self._find(eui)
        if index < 0:
            raise ISOException(SW.REFERENCED_DATA_NOT_FOUND, "not in the device log")
        removed = entries.pop(index)
        self.card.begin_transaction()
        self._store(entries)
        historic = self.historic + removed[: _EUI + 1]
        self.historic = historic[-_HISTORIC * MAX_DEVICES :]
        self.card.commit_transaction()
        return b""

    def _protect(self, data: bytes) -> bytes:
        if len(data) < _EUI:
            raise ISOException(SW.WRONG_LENGTH, "destination EUI-64 and plaintext")
        destination, plaintext = data[:_EUI], data[_EUI:]
        entries = self._entries()
        index = self._find(destination)
        if index < 0:
            raise ISOException(SW.REFERENCED_DATA_NOT_FOUND, "not in the device log")
        entry = entries[index]
        key = entry[_EUI + 1 : _EUI + 1 + _KEY]
        outgoing = int.from_bytes(entry[-4:], "big") + 1
        entries[index] = entry[:-4] + outgoing.to_bytes(4, "big")
        self._store(entries)
        return protect(key, self.hub_eui, outgoing, plaintext)

    def _unprotect(self, data: bytes) -> bytes:
        try:
            frame = HanFrame.decode(data)
        except HanSecurityError as exc:
            raise ISOException(SW.WRONG_LENGTH, str(exc)) from None
        entries = self._entries()
        index = self._find(frame.source)
        if index < 0:
            raise ISOException(SW.REFERENCED_DATA_NOT_FOUND, "source not in the device log")
        entry = entries[index]
        key = entry[_EUI + 1 : _EUI + 1 + _KEY]
        incoming = int.from_bytes(entry[_EUI + 1 + _KEY : _EUI + 1 + _KEY + 4], "big")
        if frame.counter <= incoming:
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "frame counter replayed")
        try:
            plaintext = unprotect(key, frame)
        except HanSecurityError as exc:
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, str(exc)) from None
        entries[index] = (
            entry[: _EUI + 1 + _KEY] + frame.counter.to_bytes(4, "big") + entry[-4:]
        )
        self._store(entries)
        return plaintext


class GpfApplet(_KeyAgreement):
    snapshot = PersistentBytes(max_size=4096)
    taken_at = PersistentInt(size=4)
    max_age_s = PersistentInt(1800, size=4)  # a copy older than this is unreliable
    reads_per_day = PersistentInt(4, size=2)  # pass-through reads the battery affords
    day = PersistentInt(size=4)
    reads_today = PersistentInt(size=2)
    refused = PersistentInt(size=4)

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        if apdu.cla != CLA:
            raise ISOException(SW.CLA_NOT_SUPPORTED)
        handled = self.key_command(apdu)
        if handled is not None:
            return handled
        ins, data = apdu.ins, apdu.data
        if ins == GpfIns.UPDATE:
            if len(data) < 4:
                raise ISOException(SW.WRONG_LENGTH, "time and snapshot")
            self.card.begin_transaction()
            self.taken_at = int.from_bytes(data[:4], "big")
            self.snapshot = data[4:]
            self.card.commit_transaction()
            return b""
        if ins == GpfIns.READ:
            now = self._now(data)
            reliable = bool(self.snapshot) and now - self.taken_at <= self.max_age_s
            return bytes([reliable]) + self.taken_at.to_bytes(4, "big") + self.snapshot
        if ins == GpfIns.ADMIT:
            now = self._now(data)
            today = now // 86400
            if today != self.day:
                self.day = today
                self.reads_today = 0
            if self.reads_today >= self.reads_per_day:
                self.refused = (self.refused + 1) % 2**32
                return b"\x00"
            self.reads_today = self.reads_today + 1
            return b"\x01"
        if ins == GpfIns.CONFIGURE:
            if len(data) != 6:
                raise ISOException(SW.WRONG_LENGTH, "max age(4) and reads per day(2)")
            self.max_age_s = int.from_bytes(data[:4], "big")
            self.reads_per_day = int.from_bytes(data[4:], "big")
            return b""
        raise ISOException(SW.INS_NOT_SUPPORTED)

    @staticmethod
    def _now(data: bytes) -> int:
        if len(data) != 4:
            raise ISOException(SW.WRONG_LENGTH, "the time is 4 bytes")
        return int.from_bytes(data, "big")


HYDRA_LOAD_FILE = LoadFile(
    HYDRA_LOAD_FILE_AID, {CHF_MODULE_AID: ChfApplet, GPF_MODULE_AID: GpfApplet}, "hydra"
)


def hydra_profile(hub_eui: bytes) -> CardProfile:
    """The hub's card image: the Hydra load file, CHF and GPF installed on first power-up."""

    def personalize(manager: CardManager) -> None:
        if manager.entry(CHF_AID) is None:
            manager.install(HYDRA_LOAD_FILE_AID, CHF_MODULE_AID, CHF_AID, params=hub_eui)
        if manager.entry(GPF_AID) is None:
            manager.install(HYDRA_LOAD_FILE_AID, GPF_MODULE_AID, GPF_AID)

    return CardProfile("hydra-hub", load_files=(HYDRA_LOAD_FILE,), personalize=personalize)

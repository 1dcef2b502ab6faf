"""Example applets: a transactional counter, a key-holding signer and a client of the signer.

They are small but use every part of the applet API, and the tests and benchmarks drive them:

* :class:`CounterApplet` keeps ``value``, ``count`` and a ``check`` field that must always
  equal ``value || count``; updates run in transactions, and some commands deliberately fail
  or leave a transaction open so that the automatic abort can be seen.
* :class:`SignerApplet` holds a P-256 key and an AES key by handle and shares a signing
  service (:class:`SigningService`) with the applets named in its install parameters.
* :class:`SignerClientApplet` lives in another load file (another firewall context) and signs
  through the shared service.
"""

from __future__ import annotations

from smarthydra.card.apdu import SW
from smarthydra.card.applet import (
    APDU,
    Applet,
    ClearEvent,
    ISOException,
    PersistentBytes,
    PersistentInt,
)
from smarthydra.card.card import CardProfile
from smarthydra.card.firewall import Shareable
from smarthydra.card.keys import KeyError_
from smarthydra.card.registry import LoadFile, Privilege, privileges_of
from smarthydra.card.runtime import CardManager

COUNTER_LOAD_FILE_AID = bytes.fromhex("F053485901")
COUNTER_MODULE_AID = bytes.fromhex("F05348590101")
COUNTER_AID = bytes.fromhex("F0534859010101")
SIGNER_LOAD_FILE_AID = bytes.fromhex("F053485902")
SIGNER_MODULE_AID = bytes.fromhex("F05348590201")
SIGNER_AID = bytes.fromhex("F0534859020101")
CLIENT_LOAD_FILE_AID = bytes.fromhex("F053485903")
CLIENT_MODULE_AID = bytes.fromhex("F05348590301")
CLIENT_AID = bytes.fromhex("F0534859030101")

CLA = 0x80  # proprietary class for the example commands


class CounterIns:
    ADD = 0x10  # data: 4-byte amount; answers value || count
    READ = 0x12  # answers value || count || label
    ADD_THEN_FAIL = 0x14  # adds inside a transaction, then fails: the addition is undone
    ADD_LEAVE_OPEN = 0x16  # adds inside a transaction and returns: the runtime aborts it
    SET_LABEL = 0x18  # one non-transactional write
    SET_BLOB = 0x1A  # a large transactional write (commit capacity)
    SCRATCH_WRITE = 0x1C  # P1=0 clear-on-deselect, P1=1 clear-on-reset transient
    SCRATCH_READ = 0x1E
    ECHO = 0x20  # answers the command data (chaining and GET RESPONSE tests), Le-limited


def _u32(data: bytes) -> int:
    if len(data) != 4:
        raise ISOException(SW.WRONG_LENGTH, "amount is 4 bytes")
    return int.from_bytes(data, "big")


class CounterApplet(Applet):
    multiselectable = True

    value = PersistentInt(size=4)
    count = PersistentInt(size=4)
    check = PersistentBytes(max_size=8)
    label = PersistentBytes(max_size=32)
    blob = PersistentBytes(max_size=16384)
    limit = PersistentInt(0xFFFFFFFF, size=4)

    def __init__(self) -> None:
        self.scratch = self.card.make_transient(16, ClearEvent.ON_DESELECT)
        self.session = self.card.make_transient(16, ClearEvent.ON_RESET)

    def install(self, params: bytes) -> None:
        if params:
            self.limit = _u32(params)
        self.check = bytes(8)

    def _state(self) -> bytes:
        return self.value.to_bytes(4, "big") + self.count.to_bytes(4, "big")

    def _add(self, amount: int) -> None:
        new = self.value + amount
        self.value = new % 2**32  # written first, so a limit failure must be rolled back
        if new > self.limit:
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "over the limit")
        self.count = (self.count + 1) % 2**32
        self.check = self._state()

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        if apdu.cla & 0x80 != 0x80:
            raise ISOException(SW.CLA_NOT_SUPPORTED)
        ins = apdu.ins
        if ins == CounterIns.ADD:
            amount = _u32(apdu.data)
            self.card.begin_transaction()
            self._add(amount)
            self.card.commit_transaction()
            return self._state()
        if ins == CounterIns.READ:
            return self._state() + self.label
        if ins == CounterIns.ADD_THEN_FAIL:
            amount = _u32(apdu.data)
            self.card.begin_transaction()
            self._add(amount)
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "failing on purpose")
        if ins == CounterIns.ADD_LEAVE_OPEN:
            amount = _u32(apdu.data)
            self.card.begin_transaction()
            self._add(amount)
            return self._state()
        if ins == CounterIns.SET_LABEL:
            if len(apdu.data) > 32:
                raise ISOException(SW.WRONG_LENGTH, "a label is at most 32 bytes")
            self.label = apdu.data
            return None
        if ins == CounterIns.SET_BLOB:
            self.card.begin_transaction()
            self.blob = apdu.data
            self.count = (self.count + 1) % 2**32
            self.check = self._state()
            self.card.commit_transaction()
            return None
        if ins in (CounterIns.SCRATCH_WRITE, CounterIns.SCRATCH_READ):
            if apdu.p1 not in (0, 1):
                raise ISOException(SW.INCORRECT_P1P2)
            target = self.scratch if apdu.p1 == 0 else self.session
            if ins == CounterIns.SCRATCH_READ:
                return bytes(target)
            if len(apdu.data) != 16:
                raise ISOException(SW.WRONG_LENGTH, "scratch is 16 bytes")
            target[0:16] = apdu.data
            return None
        if ins == CounterIns.ECHO:
            return apdu.data
        raise ISOException(SW.INS_NOT_SUPPORTED)


class SignerIns:
    GENERATE = 0x20
    GET_PUBLIC = 0x22
    SIGN = 0x24
    ECDH = 0x26
    SET_AES = 0x28
    CMAC = 0x2A
    CBC_ENCRYPT = 0x2C  # data: IV (16) || plaintext
    USAGE = 0x2E  # signatures made for client applets
    IMPORT = 0x2F  # personalise with a private scalar


class SigningService(Shareable):
    """What the signer shares: sign with its key, give out its public key, say who called."""

    interface = frozenset({"sign", "public_key", "last_caller"})

    def __init__(self, owner: SignerApplet) -> None:
        self._owner = owner

    def sign(self, data: bytes) -> bytes:
        caller = self._owner.card.previous_context_aid()
        if caller is None or not self._owner.allows(caller):
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "caller may not sign")
        if not self._owner.key.initialized:
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "no key yet")
        self._owner.usage = (self._owner.usage + 1) % 2**32
        return self._owner.key.sign(bytes(data))

    def public_key(self) -> bytes:
        if not self._owner.key.initialized:
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "no key yet")
        return self._owner.key.public_key()

    def last_caller(self) -> bytes:
        return self._owner.card.previous_context_aid() or b""


class SignerApplet(Applet):
    clients = PersistentBytes(max_size=170)  # LV-encoded AIDs allowed to use the service
    usage = PersistentInt(size=4)

    def __init__(self) -> None:
        self.key = self.card.ec_key("signing")
        self.mac_key = self.card.aes_key("mac")
        self.service = SigningService(self)

    def install(self, params: bytes) -> None:
        offset = 0
        while offset < len(params):  # validate the LV list of client AIDs
            length = params[offset]
            if not 5 <= length <= 16 or offset + 1 + length > len(params):
                raise ISOException(SW.WRONG_DATA, "install parameters: LV list of AIDs")
            offset += 1 + length
        self.clients = params

    def allows(self, aid: bytes) -> bool:
        params, offset = self.clients, 0
        while offset < len(params):
            length = params[offset]
            if params[offset + 1 : offset + 1 + length] == aid:
                return True
            offset += 1 + length
        return False

    def get_shareable(self, client_aid: bytes | None, parameter: int) -> Shareable | None:
        if parameter != 0 or client_aid is None or not self.allows(client_aid):
            return None
        return self.service

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        ins, data = apdu.ins, apdu.data
        try:
            if ins == SignerIns.GENERATE:
                return self.key.generate()
            if ins == SignerIns.IMPORT:
                return self.key.import_private(data)
            if ins == SignerIns.GET_PUBLIC:
                return self._need(self.key.initialized) or self.key.public_key()
            if ins == SignerIns.SIGN:
                return self._need(self.key.initialized) or self.key.sign(data)
            if ins == SignerIns.ECDH:
                return self._need(self.key.initialized) or self.key.ecdh(data)
            if ins == SignerIns.SET_AES:
                self.mac_key.set_key(data)
                return None
            if ins == SignerIns.CMAC:
                return self._need(self.mac_key.initialized) or self.mac_key.cmac(data)
            if ins == SignerIns.CBC_ENCRYPT:
                if len(data) < 16 or len(data) % 16:
                    raise ISOException(SW.WRONG_LENGTH, "IV and whole blocks")
                self._need(self.mac_key.initialized)
                return self.mac_key.cbc_encrypt(data[:16], data[16:])
            if ins == SignerIns.USAGE:
                return self.usage.to_bytes(4, "big")
        except KeyError_ as exc:
            raise ISOException(SW.WRONG_DATA, str(exc)) from None
        raise ISOException(SW.INS_NOT_SUPPORTED)

    @staticmethod
    def _need(condition: bool) -> None:
        if not condition:
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "key not initialised")


class ClientIns:
    SIGN_VIA_SERVER = 0x30
    WHO_AM_I_TO_SERVER = 0x32
    PUBLIC_VIA_SERVER = 0x34


class SignerClientApplet(Applet):
    server = PersistentBytes(max_size=16)

    def install(self, params: bytes) -> None:
        if not 5 <= len(params) <= 16:
            raise ISOException(SW.WRONG_DATA, "install parameters: the server AID")
        self.server = params

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        if apdu.ins not in (ClientIns.SIGN_VIA_SERVER, ClientIns.WHO_AM_I_TO_SERVER,
                            ClientIns.PUBLIC_VIA_SERVER):
            raise ISOException(SW.INS_NOT_SUPPORTED)
        service = self.card.lookup_shareable(self.server, 0)
        if service is None:
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "the server refused to share")
        assert isinstance(service, SigningService)
        if apdu.ins == ClientIns.SIGN_VIA_SERVER:
            return service.sign(apdu.data)
        if apdu.ins == ClientIns.WHO_AM_I_TO_SERVER:
            return service.last_caller()
        return service.public_key()


COUNTER_LOAD_FILE = LoadFile(COUNTER_LOAD_FILE_AID, {COUNTER_MODULE_AID: CounterApplet}, "counter")
SIGNER_LOAD_FILE = LoadFile(SIGNER_LOAD_FILE_AID, {SIGNER_MODULE_AID: SignerApplet}, "signer")
CLIENT_LOAD_FILE = LoadFile(
    CLIENT_LOAD_FILE_AID, {CLIENT_MODULE_AID: SignerClientApplet}, "signer-client"
)


def personalize_examples(manager: CardManager) -> None:
    """Install the three example applets if they are not there yet (safe to repeat)."""
    if manager.entry(COUNTER_AID) is None:
        manager.install(
            COUNTER_LOAD_FILE_AID, COUNTER_MODULE_AID, COUNTER_AID,
            privileges=privileges_of(Privilege.CARD_RESET),
        )
    if manager.entry(SIGNER_AID) is None:
        manager.install(
            SIGNER_LOAD_FILE_AID, SIGNER_MODULE_AID, SIGNER_AID,
            params=bytes((len(CLIENT_AID),)) + CLIENT_AID,
        )
    if manager.entry(CLIENT_AID) is None:
        manager.install(CLIENT_LOAD_FILE_AID, CLIENT_MODULE_AID, CLIENT_AID, params=SIGNER_AID)


EXAMPLES_PROFILE = CardProfile(
    "examples",
    load_files=(COUNTER_LOAD_FILE, SIGNER_LOAD_FILE, CLIENT_LOAD_FILE),
    personalize=personalize_examples,
)

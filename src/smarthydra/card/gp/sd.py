"""GlobalPlatform security domains as on-card applets (GP Card Specification 2.3.1).

One ROM load file (:data:`SD_PACKAGE_AID`) provides the :class:`SecurityDomain` class; the
issuer security domain (ISD) and every supplementary security domain (SSD) are instances of
it, so they share one firewall context and reach each other only through
:class:`SecurityDomainService` (a shareable interface: DAP and token verification, receipts).

A security domain answers SELECT with its FCI and implements the GP command set: INITIALIZE
UPDATE / EXTERNAL AUTHENTICATE (SCP03), PERFORM SECURITY OPERATION / MUTUAL AUTHENTICATE /
INTERNAL AUTHENTICATE (SCP11a/b/c), INSTALL, LOAD, DELETE, GET STATUS, SET STATUS, PUT KEY,
STORE DATA and GET DATA. Secure messaging runs in a :class:`ScpLayer` that the SD sets on the
logical channel (the runtime's SecureChannelLayer seam); it ends when the SD is deselected.

Authority for card content management (GP 9.1, 9.2):

* the ISD and SDs with Authorized Management manage content without tokens;
* SDs with Delegated Management need a token for every LOAD, INSTALL, extradition, registry
  update and DELETE, verified with the token key (:class:`KeyId` 70) of the SD holding Token
  Verification (the ISD unless it lacks that privilege); the SD holding Receipt Generation
  then answers with a receipt made with its receipt key (71) and confirmation counter;
* DAP: every SD with DAP Verification whose load is targeted at it, and every SD with
  Mandated DAP, must find a valid DAP block (E2) in the load file, checked with its DAP key
  (73), ECDSA P-256 or RSA; a missing or wrong DAP is refused with 6982.

MULTOS-style profile (``kma`` personalisation flag): a key management authority "enables"
the card by having its public key put into the ISD as the token key; from then on every
content-management command, even the ISD's own, needs a token - the KMA's *load
certificate* is the INSTALL [for load] token (and the INSTALL [for install] token that
goes with it), its *delete certificate* the DELETE token. Before enablement (no token key)
such commands are refused with 6982. Everything stays a GP construction (C.4 tokens).

Personalisation data (STORE DATA to an SD, or forwarded by the ISD after INSTALL [for
personalization], or written by the card profile) is a sequence of DGIs:
``8F01`` a PUT KEY data field with keys in clear (the channel carries it under C-DECRYPTION),
``0042`` issuer identification number, ``0045`` card image number, ``9F7F`` CPLC, ``BF21``
SCP11 certificate store (the BF21 TLV), ``0081`` SCP03 "i" parameter, ``0F01`` KMA mode
(01 on), ``00C1`` SCP03 sequence counter, ``00CF`` key diversification data. The DGI numbers
for keys, i and KMA mode are this card's own; the others reuse the GP tags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.card.apdu import SW, CommandAPDU, ResponseAPDU
from smarthydra.card.applet import APDU, Applet, ISOException, PersistentBytes, PersistentInt
from smarthydra.card.firewall import Shareable
from smarthydra.card.gp import management as gpm
from smarthydra.card.gp import tlv
from smarthydra.card.gp.apdu import CommandApdu
from smarthydra.card.gp.errors import GpError, WrongData
from smarthydra.card.gp.keystore import (
    P256_ORDER,
    KeyType,
    SdKey,
    decode_keys,
    decode_put_key,
    encode_key_block,
    encode_keys,
)
from smarthydra.card.gp.management import InstallP1, KeyId
from smarthydra.card.gp.scp03 import (
    I_PSEUDO_RANDOM_CHALLENGE,
    I_R_ENC,
    I_R_MAC,
    CardState,
    Scp03CardConfig,
    Scp03CardSession,
    Scp03StaticKeys,
)
from smarthydra.card.gp.scp11 import Scp11CardConfig, Scp11CardSession
from smarthydra.card.gp.sm import has_sm_indication
from smarthydra.card.registry import (
    LifeCycle,
    LoadFile,
    Privilege,
    RegistryEntry,
    RegistryError,
    has_privilege,
)
from smarthydra.card.runtime import CardManager
from smarthydra.crypto.primitives import private_key_from_scalar

SD_PACKAGE_AID = gpm.SD_PACKAGE_AID
SD_MODULE_AID = gpm.SD_MODULE_AID
ISD_AID = gpm.ISD_AID

MAX_LOAD_FILE = 65536
#: NVM cell (under the load file's data prefix) holding the Load File Data Block; the same
#: cell the sandbox's package resolver reads at power-up
LOAD_FILE_DATA_CELL = "package"
STATUS_PAGE = 200  # GET STATUS bytes per response: room for R-MAC and R-ENC padding

DGI_KEYS = 0x8F01
DGI_ISSUER_ID = 0x0042
DGI_CARD_IMAGE_NUMBER = 0x0045
DGI_CPLC = 0x9F7F
DGI_CERTIFICATE_STORE = 0xBF21
DGI_SCP03_I = 0x0081
DGI_KMA_MODE = 0x0F01
DGI_SEQUENCE_COUNTER = 0x00C1
DGI_KEY_DIVERSIFICATION_DATA = 0x00CF

#: privilege bits only an SD may hold (the Security Domain bit itself masked out)
SD_ONLY_BITS = (0x400000, 0x200000, 0x010000,  # DAP Verification, Delegated, Mandated DAP
                int(Privilege.AUTHORIZED_MANAGEMENT), int(Privilege.TOKEN_VERIFICATION),
                int(Privilege.RECEIPT_GENERATION), int(Privilege.CIPHERED_LOAD_FILE_DATA_BLOCK))
#: privileges a delegated-management SD may not hand out, even with a token
ISSUER_ONLY = (Privilege.AUTHORIZED_MANAGEMENT, Privilege.TOKEN_VERIFICATION,
               Privilege.GLOBAL_DELETE, Privilege.GLOBAL_LOCK, Privilege.GLOBAL_REGISTRY,
               Privilege.CARD_TERMINATE, Privilege.RECEIPT_GENERATION,
               Privilege.FINAL_APPLICATION)

PASS_THROUGH = frozenset({0x50, 0x2A, 0x82, 0x88})  # these (re)start a session
#: what an SCP11b session may do: SCP11b authenticates the card only (Amendment F 3.1.2), so
#: anyone holding the published PK.SD.ECKA can open one; it reads, it never manages
UNAUTHENTICATED_ALLOWED = frozenset({gpm.INS_GET_DATA, gpm.INS_GET_DATA_ODD,
                                     gpm.INS_GET_STATUS})


class LoadFileRejected(Exception):
    """A load file's content is not acceptable (bad package, failed static checks)."""


#: turns (load file AID, Load File Data Block) into applet code, or raises LoadFileRejected
LoadFileBuilder = Callable[[bytes, bytes], LoadFile]


def _no_builder(aid: bytes, block: bytes) -> LoadFile:
    raise LoadFileRejected("this card accepts no post-issuance code")


def _sw(sw: int, message: str = "") -> ISOException:
    return ISOException(sw, message)


# --- secure channel layer ---------------------------------------------------------------


class ScpLayer:
    """Unwraps commands and wraps responses for one SCP03 or SCP11 session on a channel."""

    def __init__(self, session: Scp03CardSession | Scp11CardSession, dek: bytes,
                 protocol: int, *, oce_authenticated: bool = True) -> None:
        self.session = session
        self.dek = dek
        self.protocol = protocol
        self.oce_authenticated = oce_authenticated
        self.open = True

    @property
    def security_level(self) -> int:
        sm = self.session.sm
        return sm.security_level if sm is not None else 0

    def unwrap(self, command: CommandAPDU) -> CommandAPDU:
        if not self.open:
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "session closed")
        if command.cla & 0x80 and command.ins in PASS_THROUGH and not has_sm_indication(
                command.cla):
            self.open = False  # a new authentication ends this session
            return command
        try:
            raw = CommandApdu(command.cla, command.ins, command.p1, command.p2, command.data,
                              None if not command.ne else command.ne % 256).to_bytes()
            plain = self.session.unwrap_command(raw, extended=command.is_extended)
        except GpError as exc:
            self.open = False
            raise ISOException(exc.sw, str(exc)) from None
        except Exception:  # whatever fails here, the session must not outlive it
            self.open = False
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "secure messaging failed") from None
        return CommandAPDU(plain.cla, plain.ins, plain.p1, plain.p2, plain.data, command.ne)

    def wrap(self, command: CommandAPDU, response: ResponseAPDU) -> ResponseAPDU:
        if not self.open:
            return response
        return ResponseAPDU.parse(self.session.wrap_response(response.data, response.sw))


# --- per-channel RAM state --------------------------------------------------------------


@dataclass
class _Load:
    load_file_aid: bytes
    sd_aid: bytes
    hash: bytes
    delegated: bool
    next_block: int = 0
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _ChannelState:
    layer: ScpLayer | None = None
    scp03: Scp03CardSession | None = None
    scp03_dek: bytes = b""
    scp11: Scp11CardSession | None = None
    load: _Load | None = None
    personalize: bytes | None = None
    store_block: int = 0
    store_buffer: bytearray = field(default_factory=bytearray)
    status_more: tuple[int, int, list[bytes]] | None = None  # (P1, P2 format, entries left)


# --- the shareable service --------------------------------------------------------------


class SecurityDomainService(Shareable):
    """What one SD asks of another: DAP and token verification, receipts."""

    interface = frozenset({"verify_dap", "verify_token", "has_token_key", "confirm",
                           "tokens_mandated"})

    def __init__(self, owner: SecurityDomain) -> None:
        self._owner = owner

    def verify_dap(self, block_hash: bytes, signature: bytes) -> bool:
        key = self._owner.find_key(KeyId.DAP)
        return key is not None and gpm.verify(key.public_key(), bytes(block_hash),
                                              bytes(signature))

    def tokens_mandated(self) -> bool:
        """MULTOS-style profile: every content-management command needs a token."""
        return bool(self._owner.kma_mode)

    def has_token_key(self) -> bool:
        return self._owner.find_key(KeyId.TOKEN) is not None

    def verify_token(self, data: bytes, token: bytes) -> bool:
        key = self._owner.find_key(KeyId.TOKEN)
        return key is not None and gpm.verify(key.public_key(), bytes(data), bytes(token))

    def confirm(self, aids: list[bytes]) -> bytes:
        """A receipt over the operation's AIDs (and the next confirmation counter), or 00."""
        return self._owner.confirm(list(aids))


#: ``lookup_shareable(sd_aid, SECURE_CHANNEL_PARAMETER)``: an associated applet's secure channel
SECURE_CHANNEL_PARAMETER = 1
AUTHENTICATED = 0x80  # GP security level bit: the off-card entity is authenticated


class SecureChannelService(Shareable):
    """GP's ``SecureChannel`` interface (GP CS 2.3.1 §6.7, ``GPSystem.getSecureChannel``).

    Handed by a security domain only to the applets associated with it: the applet passes
    INITIALIZE UPDATE and EXTERNAL AUTHENTICATE on (``process_security``); once the session
    is open the SD's :class:`ScpLayer` sits on the channel and the runtime unwraps every
    later command and wraps every response in the SD's context, so the applet sees plain
    commands and asks ``security_level`` whether they came through the session. The session
    belongs to the (channel, applet) pair; selecting anything on the channel ends it.
    """

    interface = frozenset({"process_security", "security_level", "reset_security"})

    def __init__(self, owner: SecurityDomain) -> None:
        self._owner = owner

    def process_security(self, cla: int, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        return self._owner.applet_security(int(cla), int(ins), int(p1), int(p2), bytes(data))

    def security_level(self) -> int:
        return self._owner.applet_security_level()

    def reset_security(self) -> None:
        self._owner.applet_reset_security()


# --- the security domain ----------------------------------------------------------------


class SecurityDomain(Applet):
    """An issuer or supplementary security domain."""

    multiselectable = True
    load_file_builder: ClassVar[LoadFileBuilder] = _no_builder

    keys_raw = PersistentBytes(max_size=32768)
    sequence_counter = PersistentInt(size=3)
    confirmation_counter = PersistentInt(size=2)
    scp03_i = PersistentInt(I_PSEUDO_RANDOM_CHALLENGE | I_R_MAC | I_R_ENC, size=1)
    issuer_id = PersistentBytes(max_size=16)
    card_image_number = PersistentBytes(max_size=16)
    cplc = PersistentBytes(max_size=64)
    certificate_store = PersistentBytes(max_size=4096)
    kma_mode = PersistentInt(0, size=1)
    key_diversification_data = PersistentBytes(bytes(10), max_size=10)

    def __init__(self) -> None:
        self._channels: dict[int, _ChannelState] = {}
        self._service = SecurityDomainService(self)
        self._secure_channel = SecureChannelService(self)
        # sessions opened through an associated applet: channel -> (applet AID, state)
        self._applet_sessions: dict[int, tuple[bytes, _ChannelState]] = {}

    # --- applet life ----------------------------------------------------------------

    def install(self, params: bytes) -> None:
        """``params``: the C9 application-specific parameters; ``81 02 03 i`` sets SCP03 i."""
        try:
            for item in tlv.parse_all(params):
                if item.tag == 0x81 and len(item.value) == 2 and item.value[0] == 0x03:
                    self.scp03_i = item.value[1] & 0x70
        except WrongData:
            raise _sw(SW.WRONG_DATA, "bad SD install parameters") from None

    def select(self) -> bool:
        self._channels[self.card.channel] = _ChannelState()
        return True

    def deselect(self) -> None:
        self._channels.pop(self.card.channel, None)

    def get_shareable(self, client_aid: bytes | None, parameter: int) -> Shareable | None:
        if client_aid is None:
            return None
        entry = self._manager().entry(client_aid)
        if parameter == SECURE_CHANNEL_PARAMETER:
            associated = (entry is not None and not entry.is_security_domain
                          and entry.associated_sd == self.aid)
            return self._secure_channel if associated else None
        return self._service if entry is not None and entry.is_security_domain else None

    # --- secure channel for associated applets (SecureChannelService) -----------------

    def _applet_state(self, fresh: bool) -> _ChannelState:
        caller = self.card.previous_context_aid()
        if caller is None:
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "no applet asked")
        channel = self.card.channel
        held = self._applet_sessions.get(channel)
        if held is None or held[0] != caller or fresh:
            if held is not None and held[1].layer is not None:
                held[1].layer.open = False
            held = (caller, _ChannelState())
            self._applet_sessions[channel] = held
        return held[1]

    def applet_security(self, cla: int, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        """INITIALIZE UPDATE / EXTERNAL AUTHENTICATE passed on by an associated applet."""
        command = CommandAPDU(cla, ins, p1, p2, data, 0)
        try:
            if ins == 0x50 and cla & 0x80:
                return self._initialize_update(command, self._applet_state(fresh=True))
            if ins == 0x82 and has_sm_indication(cla):
                self._external_authenticate(command, self._applet_state(fresh=False))
                return b""
        except GpError as exc:
            raise _sw(exc.sw, str(exc)) from None
        raise _sw(SW.INS_NOT_SUPPORTED, "not a secure channel command")

    def applet_security_level(self) -> int:
        """The level of the calling applet's session on this channel (0: none)."""
        held = self._applet_sessions.get(self.card.channel)
        caller = self.card.previous_context_aid()
        if held is None or held[0] != caller or held[1].layer is None or not held[1].layer.open:
            return 0
        return AUTHENTICATED | held[1].layer.security_level

    def applet_reset_security(self) -> None:
        held = self._applet_sessions.pop(self.card.channel, None)
        if held is not None and held[1].layer is not None:
            held[1].layer.open = False
            self.card.set_secure_channel(None)

    def process_data(self, data: bytes) -> bytes:
        """Personalisation DGIs forwarded by the ISD (or written by the card profile)."""
        self._personalize(data)
        return b""

    # --- helpers ----------------------------------------------------------------------

    def _manager(self) -> CardManager:
        return self.card.manager()

    def _state(self) -> _ChannelState:
        state = self._channels.get(self.card.channel)
        if state is None:
            state = self._channels[self.card.channel] = _ChannelState()
        return state

    def _entry(self) -> RegistryEntry:
        entry = self._manager().entry(self.aid)
        if entry is None:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "security domain not in the registry")
        return entry

    @property
    def is_isd(self) -> bool:
        return self._entry().associated_sd is None

    def keys(self) -> list[SdKey]:
        return decode_keys(self.keys_raw)

    def find_key(self, kid: int, kvn: int = 0, key_type: KeyType | None = None) -> SdKey | None:
        for key in self.keys():
            if key.kid == kid and (kvn == 0 or key.kvn == kvn) and (
                    key_type is None or key.key_type is key_type):
                return key
        return None

    def store_keys(self, keys: list[SdKey]) -> None:
        self.keys_raw = encode_keys(keys)

    def _scp03_key_sets(self) -> list[Scp03StaticKeys]:
        by_version: dict[int, dict[int, bytes]] = {}
        for key in self.keys():
            if key.key_type is KeyType.AES and key.kid in (1, 2, 3):
                by_version.setdefault(key.kvn, {})[key.kid] = key.value
        sets = []
        for kvn, parts in sorted(by_version.items()):
            if set(parts) == {1, 2, 3} and len({len(v) for v in parts.values()}) == 1:
                sets.append(Scp03StaticKeys(parts[1], parts[2], parts[3], kvn))
        return sets

    def _isd_service(self) -> SecurityDomainService:
        isd = next((e for e in self._manager().entries()
                    if e.is_security_domain and e.associated_sd is None), None)
        if isd is None:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "no issuer security domain")
        if isd.aid == self.aid:
            return self._service
        service = self.card.lookup_shareable(isd.aid)
        if not isinstance(service, SecurityDomainService):
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "issuer security domain unreachable")
        return service

    def _authority(self, privilege: Privilege) -> SecurityDomainService | None:
        """The SD that verifies tokens / generates receipts: the one holding ``privilege``,
        the ISD first (GP 2.3.1 9.2: the card issuer's authority, possibly delegated)."""
        holders = sorted((e for e in self._manager().entries()
                          if e.is_security_domain and e.has(privilege)),
                         key=lambda e: (e.associated_sd is not None, e.aid))
        return self._service_of(holders[0].aid) if holders else None

    def _service_of(self, sd_aid: bytes) -> SecurityDomainService | None:
        if sd_aid == self.aid:
            return self._service
        service = self.card.lookup_shareable(sd_aid)
        return service if isinstance(service, SecurityDomainService) else None

    def card_unique_data(self) -> bytes:
        return bytes(self.issuer_id) + bytes(self.card_image_number)

    def confirm(self, aids: list[bytes]) -> bytes:
        key = self.find_key(KeyId.RECEIPT, key_type=KeyType.AES)
        if key is None or not self._entry().has(Privilege.RECEIPT_GENERATION):
            return b"\x00"
        counter = (self.confirmation_counter + 1) & 0xFFFF
        self.confirmation_counter = counter
        cud = self.card_unique_data()
        return gpm.Confirmation(gpm.receipt(key.value, counter, cud, aids), counter,
                                cud).encode()

    def _random_ephemeral(self, curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
        while True:  # a uniform scalar in 1..n-1 from the card's RNG
            scalar = self.card.random(32)
            if 0 < int.from_bytes(scalar, "big") < P256_ORDER:
                return private_key_from_scalar(scalar)

    # --- dispatch ---------------------------------------------------------------------

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return self._fci()
        command = apdu.command
        state = self._state()
        if state.layer is not None and not state.layer.open:
            state.layer = None
        life = self._manager().card_life_cycle
        ins = command.ins
        if has_sm_indication(command.cla) and ins != 0x82:
            # the secure channel layer strips the indication from what it verified: a
            # command still carrying it came with no session to check its C-MAC
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "secure messaging without a session")
        if ins in (gpm.INS_GET_DATA, gpm.INS_GET_DATA_ODD):
            return self._get_data(command)
        if not command.cla & 0x80:
            raise _sw(SW.CLA_NOT_SUPPORTED, "GlobalPlatform commands use a proprietary class")
        if life == LifeCycle.TERMINATED:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "the card is terminated")
        handlers: dict[int, Callable[[CommandAPDU, _ChannelState], bytes | None]] = {
            0x50: self._initialize_update,
            0x82: self._authenticate_82,
            0x2A: self._perform_security_operation,
            0x88: self._internal_authenticate,
            gpm.INS_INSTALL: self._install,
            gpm.INS_LOAD: self._load,
            gpm.INS_DELETE: self._delete,
            gpm.INS_GET_STATUS: self._get_status,
            gpm.INS_SET_STATUS: self._set_status,
            gpm.INS_PUT_KEY: self._put_key,
            gpm.INS_STORE_DATA: self._store_data,
        }
        handler = handlers.get(ins)
        if handler is None:
            raise _sw(SW.INS_NOT_SUPPORTED)
        if life == LifeCycle.CARD_LOCKED and ins not in (
                0x50, 0x82, 0x2A, 0x88, gpm.INS_SET_STATUS, gpm.INS_GET_STATUS):
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "the card is locked")
        if ins not in (0x50, 0x82, 0x2A, 0x88) and (state.layer is None or not state.layer.open):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "no authenticated secure channel")
        if (state.layer is not None and not state.layer.oce_authenticated
                and ins not in UNAUTHENTICATED_ALLOWED | PASS_THROUGH):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "SCP11b does not authenticate the OCE")
        try:
            return handler(command, state)
        except GpError as exc:
            raise _sw(exc.sw, str(exc)) from None

    def _fci(self) -> bytes:
        recognition = tlv.parse_one(self._recognition())[0].value  # the 73 template
        proprietary = recognition + tlv.encode(0x9F65, b"\xFF")
        return tlv.encode(0x6F, tlv.encode(0x84, self.aid) + tlv.encode(0xA5, proprietary))

    def _recognition(self) -> bytes:
        scp11 = 0x07 if self.find_key(KeyId.SCP11B, key_type=KeyType.EC_PRIVATE) else None
        return gpm.card_recognition_data(self.scp03_i, scp11)

    # --- secure channel establishment -------------------------------------------------

    def _end_session(self, state: _ChannelState) -> None:
        if state.layer is not None:
            state.layer.open = False
        state.layer = None
        state.scp03 = None
        self.card.set_secure_channel(None)

    def _initialize_update(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        self._end_session(state)
        key_sets = self._scp03_key_sets()
        if not key_sets:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no SCP03 key set")
        i_param = self.scp03_i
        config = Scp03CardConfig(
            i_param=i_param, aid=self.aid if i_param & I_PSEUDO_RANDOM_CHALLENGE else None,
            key_diversification_data=bytes(self.key_diversification_data),
            sequence_counter=self.sequence_counter, key_sets=tuple(key_sets))
        session = Scp03CardSession(config, random_bytes=self.card.random)
        raw = CommandApdu(command.cla, command.ins, command.p1, command.p2, command.data,
                          0).to_bytes()
        try:
            response = session.initialize_update(raw)
        finally:
            if session.sequence_counter != self.sequence_counter:
                self.sequence_counter = session.sequence_counter  # never reuse a challenge
        state.scp03 = session
        state.scp03_dek = session._key_set(command.p1).dek
        return response[:-2]

    def _authenticate_82(self, command: CommandAPDU, state: _ChannelState) -> bytes | None:
        if has_sm_indication(command.cla):
            self._external_authenticate(command, state)
            return None
        return self._scp11_authenticate(command, state)

    def _external_authenticate(self, command: CommandAPDU, state: _ChannelState) -> None:
        session = state.scp03
        if session is None or session.state is not CardState.INITIALIZED:
            self._end_session(state)
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "EXTERNAL AUTHENTICATE without INITIALIZE")
        raw = CommandApdu(command.cla, command.ins, command.p1, command.p2,
                          command.data).to_bytes()
        try:
            session.external_authenticate(raw, extended=command.is_extended)
        except GpError:
            self._end_session(state)
            raise
        layer = ScpLayer(session, state.scp03_dek, 0x03)
        state.layer = layer
        self.card.set_secure_channel(layer)
        return None

    def _scp11_session(self, state: _ChannelState, kvn: int, kid: int) -> Scp11CardSession:
        key = self.find_key(kid, kvn, KeyType.EC_PRIVATE) or next(
            (k for k in self.keys() if k.key_type is KeyType.EC_PRIVATE
             and k.kid in (KeyId.SCP11A, KeyId.SCP11B, KeyId.SCP11C)), None)
        if key is None:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no SCP11 key")
        if state.scp11 is None:
            state.scp11 = Scp11CardSession(Scp11CardConfig(key.ec_private_key(), kvn=key.kvn),
                                           new_ephemeral_key=self._random_ephemeral)
        return state.scp11

    def _perform_security_operation(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        self._end_session(state)
        ca = self.find_key(command.p2 & 0x7F, command.p1, KeyType.EC_PUBLIC)
        if ca is None:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no CA-KLOC key with that reference")
        session = self._scp11_session(state, 0, 0)
        public = ca.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        session.config = dataclasses.replace(session.config, oce_ca_public_key=public)
        raw = CommandApdu(command.cla, command.ins, command.p1, command.p2,
                          command.data).to_bytes()
        return session.perform_security_operation(raw)[:-2]

    def _scp11_authenticate(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        self._end_session(state)
        key = self.find_key(command.p2, command.p1, KeyType.EC_PRIVATE)
        if key is None or command.p2 not in (KeyId.SCP11A, KeyId.SCP11B, KeyId.SCP11C):
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND,
                      f"no SCP11 key {command.p1:02X}/{command.p2:02X}")
        session = self._scp11_session(state, key.kvn, key.kid)
        session.config = dataclasses.replace(session.config,
                                             sd_private_key=key.ec_private_key(),
                                             kvn=key.kvn, kid=command.p2)
        raw = CommandApdu(command.cla, command.ins, command.p1, command.p2, command.data,
                          0).to_bytes()
        try:
            response = session.authenticate(raw)
        except GpError:
            state.scp11 = None
            raise
        sm = session.sm
        assert sm is not None and sm.keys.s_dek is not None
        layer = ScpLayer(session, sm.keys.s_dek, 0x11,
                         oce_authenticated=command.p2 != KeyId.SCP11B)
        state.layer = layer
        state.scp11 = None  # the next PSO starts a new certificate chain
        self.card.set_secure_channel(layer)
        return response[:-2]

    def _internal_authenticate(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        return self._scp11_authenticate(command, state)

    # --- authority --------------------------------------------------------------------

    def _authorize(self, p1: int, p2: int, fields: bytes, token: bytes) -> bool:
        """Check this SD may do the operation; True when it ran under a (verified) token."""
        entry = self._entry()
        if self._manager().card_life_cycle == LifeCycle.CARD_LOCKED:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "the card is locked")
        authorized = entry.associated_sd is None or entry.has(Privilege.AUTHORIZED_MANAGEMENT)
        if authorized and not self._isd_service().tokens_mandated():
            return False
        if not (authorized or entry.has(Privilege.DELEGATED_MANAGEMENT)):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "no card content management privilege")
        if not token:
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "a token is required")
        service = self._authority(Privilege.TOKEN_VERIFICATION)
        if service is None or not service.has_token_key():
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "no token verification key")
        if not service.verify_token(gpm.token_data(p1, p2, fields), token):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "token does not verify")
        return True

    def _check_privileges(self, privileges: bytes, delegated: bool) -> bytes:
        if len(privileges) == 1:
            privileges += b"\x00\x00"
        if len(privileges) != 3:
            raise _sw(SW.WRONG_DATA, "privileges are 1 or 3 bytes")
        is_sd = has_privilege(privileges, Privilege.SECURITY_DOMAIN)
        value = int.from_bytes(privileges, "big")
        if not is_sd and any(value & bit for bit in SD_ONLY_BITS):
            raise _sw(SW.WRONG_DATA, "privileges for security domains on an application")
        if has_privilege(privileges, Privilege.DELEGATED_MANAGEMENT) and has_privilege(
                privileges, Privilege.AUTHORIZED_MANAGEMENT):
            raise _sw(SW.WRONG_DATA, "delegated and authorized management exclude each other")
        entry = self._entry()
        issuer = entry.associated_sd is None or entry.has(Privilege.AUTHORIZED_MANAGEMENT)
        if not issuer and any(has_privilege(privileges, p) for p in ISSUER_ONLY):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "only the issuer grants that privilege")
        return privileges

    # --- INSTALL ----------------------------------------------------------------------

    def _install(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        p1 = command.p1
        if command.p2 != 0x00 or p1 not in {int(v) for v in InstallP1} | {0x0C}:
            raise _sw(SW.INCORRECT_P1P2)
        data = gpm.InstallData.parse(p1, command.data)
        if p1 == InstallP1.PERSONALIZATION:
            return self._install_for_personalization(data, state)
        delegated = self._authorize(p1, command.p2, data.fields_for(p1), data.token)
        if p1 == InstallP1.LOAD:
            return self._install_for_load(data, state, delegated)
        if p1 & InstallP1.INSTALL:
            return self._install_for_install(p1, data, delegated)
        if p1 == InstallP1.MAKE_SELECTABLE:
            return self._make_selectable(data, delegated)
        if p1 == InstallP1.EXTRADITION:
            return self._extradite(data, delegated)
        return self._registry_update(data, delegated)

    def _receipt(self, delegated: bool, aids: list[bytes]) -> bytes:
        if not delegated:
            return b"\x00"
        service = self._authority(Privilege.RECEIPT_GENERATION)
        return service.confirm(aids) if service is not None else b"\x00"

    def _install_for_load(self, data: gpm.InstallData, state: _ChannelState,
                          delegated: bool) -> bytes:
        manager = self._manager()
        aid = data.field1
        if not 5 <= len(aid) <= 16:
            raise _sw(SW.WRONG_DATA, "load file AID is 5..16 bytes")
        sd_aid = data.field2 or self.aid
        sd = manager.entry(sd_aid)
        if sd is None or not sd.is_security_domain:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such security domain")
        if sd_aid != self.aid and not self.is_isd and not self._entry().has(
                Privilege.AUTHORIZED_MANAGEMENT):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "may only load into this SD")
        if manager.entry(aid) is not None or any(lf.aid == aid for lf in manager.load_files()):
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "AID already in use")
        if data.field3 and len(data.field3) not in gpm.HASH_BY_LENGTH:
            raise _sw(SW.WRONG_DATA, "the Load File Data Block hash is SHA-1 or SHA-2")
        state.load = _Load(aid, sd_aid, data.field3, delegated)
        return b"\x00"  # the load receipt comes with the last LOAD block

    def _load(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        load = state.load
        if load is None:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "LOAD without INSTALL [for load]")
        if command.p1 not in (0x00, 0x80) or command.p2 != load.next_block % 256:
            state.load = None
            raise _sw(SW.INCORRECT_P1P2, "LOAD block out of sequence")
        load.data += command.data
        load.next_block += 1
        if len(load.data) > MAX_LOAD_FILE + 1024:
            state.load = None
            raise _sw(SW.NOT_ENOUGH_MEMORY, "load file too large")
        if command.p1 == 0x00:
            return b""
        state.load = None
        return self._complete_load(load)

    def _complete_load(self, load: _Load) -> bytes:
        manager = self._manager()
        try:
            parsed = gpm.LoadFile.parse(bytes(load.data))
        except WrongData as exc:
            raise _sw(SW.WRONG_DATA, str(exc)) from None
        block_hash = gpm.load_file_data_block_hash(parsed.data_block, len(load.hash) or 32)
        if load.hash and load.hash != block_hash:
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "Load File Data Block hash mismatch")
        self._verify_daps(load, parsed, block_hash)
        try:
            code = type(self).load_file_builder(load.load_file_aid, parsed.data_block)
        except LoadFileRejected as exc:
            raise _sw(SW.WRONG_DATA, f"load file refused: {exc}") from None
        if code.aid != load.load_file_aid:
            raise _sw(SW.WRONG_DATA, "the package AID differs from INSTALL [for load]")

        def store() -> None:
            manager.register_load_file(code, rom=False, associated_sd=load.sd_aid)
            manager.write_load_file_data(code.aid, LOAD_FILE_DATA_CELL, parsed.data_block)

        self.card.begin_transaction()
        try:
            store()
            self.card.commit_transaction()
        except ISOException:
            raise
        except Exception as exc:
            raise _sw(SW.NOT_ENOUGH_MEMORY, f"cannot store the load file: {exc}") from None
        return self._receipt(load.delegated, [load.load_file_aid, load.sd_aid])

    def _verify_daps(self, load: _Load, parsed: gpm.LoadFile, block_hash: bytes) -> None:
        manager = self._manager()
        required = {e.aid for e in manager.entries()
                    if e.is_security_domain and e.has(Privilege.MANDATED_DAP)}
        target = manager.entry(load.sd_aid)
        if target is not None and target.has(Privilege.DAP_VERIFICATION):
            required.add(load.sd_aid)
        for sd_aid in required - set(parsed.daps):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED,
                      f"DAP of {sd_aid.hex().upper()} missing")
        for sd_aid, signature in parsed.daps.items():
            entry = manager.entry(sd_aid)
            if entry is None or not entry.has(Privilege.DAP_VERIFICATION):
                raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "DAP block for an SD without DAP")
            service = self._service_of(sd_aid)
            if service is None or not service.verify_dap(block_hash, signature):
                raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED,
                          f"DAP of {sd_aid.hex().upper()} does not verify")

    def _install_params(self, raw: bytes) -> bytes:
        if not raw:
            return b""
        try:
            items = tlv.parse_all(raw)
        except WrongData:
            raise _sw(SW.WRONG_DATA, "install parameters are not TLV") from None
        c9 = tlv.find(items, 0xC9)
        return c9.value if c9 is not None else b""

    def _install_for_install(self, p1: int, data: gpm.InstallData, delegated: bool) -> bytes:
        manager = self._manager()
        lf_aid, module_aid = data.field1, data.field2
        app_aid = data.field3 or module_aid
        privileges = self._check_privileges(data.field4 or b"\x00", delegated)
        params = self._install_params(data.field5)
        code = manager.load_file_code(lf_aid)
        if code is None:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such load file")
        if module_aid not in code.modules:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such module in the load file")
        is_sd = has_privilege(privileges, Privilege.SECURITY_DOMAIN)
        if is_sd != (lf_aid == SD_PACKAGE_AID):
            raise _sw(SW.WRONG_DATA, "security domains come from the SD load file only")
        if not 5 <= len(app_aid) <= 16:
            raise _sw(SW.WRONG_DATA, "application AID is 5..16 bytes")
        if manager.entry(app_aid) is not None or any(
                lf.aid == app_aid for lf in manager.load_files()):
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "AID already in use")
        selectable = bool(p1 & InstallP1.MAKE_SELECTABLE)
        life = LifeCycle.SELECTABLE if selectable else LifeCycle.INSTALLED
        try:
            manager.install(lf_aid, module_aid, app_aid, privileges=privileges, params=params,
                            life_cycle=life, associated_sd=self.aid)
        except ISOException:
            raise
        except RegistryError as exc:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, str(exc)) from None
        except Exception as exc:
            raise _sw(SW.WRONG_DATA, f"the applet refused installation: {exc}") from None
        return self._receipt(delegated, [lf_aid, app_aid])

    def _owned(self, entry: RegistryEntry, global_privilege: Privilege) -> bool:
        return self._may_manage(entry.associated_sd, global_privilege)

    def _may_manage(self, associated_sd: bytes | None, global_privilege: Privilege) -> bool:
        """This SD manages what is associated with it; the ISD, an Authorized Management SD
        or one with the global privilege manages everything."""
        me = self._entry()
        return (associated_sd == self.aid or me.associated_sd is None
                or me.has(Privilege.AUTHORIZED_MANAGEMENT) or me.has(global_privilege))

    def _make_selectable(self, data: gpm.InstallData, delegated: bool) -> bytes:
        manager = self._manager()
        entry = manager.entry(data.field3)
        if entry is None:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such application")
        if not self._owned(entry, Privilege.GLOBAL_REGISTRY):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "application of another SD")
        if entry.life_cycle != LifeCycle.INSTALLED:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "application is not INSTALLED")
        if data.field4:
            manager.set_privileges(entry.aid, self._check_privileges(data.field4, delegated))
        manager.set_life_cycle(entry.aid, LifeCycle.SELECTABLE)
        return self._receipt(delegated, [entry.aid])

    def _extradite(self, data: gpm.InstallData, delegated: bool) -> bytes:
        manager = self._manager()
        target_sd = manager.entry(data.field1)
        if target_sd is None or not target_sd.is_security_domain:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such security domain")
        aid = data.field3
        entry = manager.entry(aid)
        if entry is not None:
            if entry.associated_sd is None:
                raise _sw(SW.CONDITIONS_NOT_SATISFIED, "the ISD is not extradited")
            if not self._owned(entry, Privilege.GLOBAL_REGISTRY):
                raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "application of another SD")
            old: bytes | None = entry.associated_sd
            manager.set_associated_sd(aid, target_sd.aid)
        else:
            lf = next((lf for lf in manager.load_files() if lf.aid == aid), None)
            if lf is None:
                raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such application or load file")
            old = lf.associated_sd
            manager.set_load_file_associated_sd(aid, target_sd.aid)
        return self._receipt(delegated, [target_sd.aid, aid] + ([old] if old else []))

    def _registry_update(self, data: gpm.InstallData, delegated: bool) -> bytes:
        manager = self._manager()
        entry = manager.entry(data.field3)
        if entry is None:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such application")
        if not self._owned(entry, Privilege.GLOBAL_REGISTRY):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "application of another SD")
        if data.field1:
            target = manager.entry(data.field1)
            if target is None or not target.is_security_domain:
                raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such security domain")
            manager.set_associated_sd(entry.aid, target.aid)
        if data.field4:
            privileges = self._check_privileges(data.field4, delegated)
            if entry.is_security_domain != has_privilege(privileges, Privilege.SECURITY_DOMAIN):
                raise _sw(SW.WRONG_DATA, "registry update cannot change what an entry is")
            manager.set_privileges(entry.aid, privileges)
        return self._receipt(delegated, [data.field1, entry.aid] if data.field1
                             else [entry.aid])

    def _install_for_personalization(self, data: gpm.InstallData, state: _ChannelState
                                     ) -> bytes:
        entry = self._manager().entry(data.field3)
        if entry is None:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such application")
        if entry.associated_sd != self.aid:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "application is not associated with this SD")
        if entry.locked:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "application is locked")
        state.personalize = entry.aid
        state.store_block = 0
        return b"\x00"

    # --- DELETE -----------------------------------------------------------------------

    def _delete(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        if command.p1 != 0x00 or command.p2 not in (0x00, 0x80):
            raise _sw(SW.INCORRECT_P1P2)
        data = gpm.DeleteData.parse(command.data)
        if data.aid is None:
            return self._delete_keys(data)
        manager = self._manager()
        aid = data.aid
        entry = manager.entry(aid)
        lf = next((lf for lf in manager.load_files() if lf.aid == aid), None)
        if entry is None and lf is None:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such object")
        delegated = self._authorize(command.p1, command.p2, data.fields(), data.token)
        if entry is not None:
            if entry.associated_sd is None:
                raise _sw(SW.CONDITIONS_NOT_SATISFIED, "the ISD cannot be deleted")
            if not self._owned(entry, Privilege.GLOBAL_DELETE):
                raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "application of another SD")
            self._delete_instance(entry)
            return self._receipt(delegated, [aid])
        assert lf is not None
        if lf.rom:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "a ROM load file cannot be deleted")
        if not self._may_manage(lf.associated_sd, Privilege.GLOBAL_DELETE):
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "load file of another SD")
        instances = [e for e in manager.entries() if e.load_file_aid == aid]
        if instances and command.p2 != 0x80:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "load file has applications; delete related")
        self.card.begin_transaction()
        for instance in instances:
            self._delete_instance(instance)
        manager.delete_load_file(aid)
        self.card.commit_transaction()
        return self._receipt(delegated, [aid])

    def _delete_instance(self, entry: RegistryEntry) -> None:
        manager = self._manager()
        if entry.is_security_domain and (
                any(e.associated_sd == entry.aid for e in manager.entries())
                or any(lf.associated_sd == entry.aid for lf in manager.load_files())):
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "security domain still has associations")
        manager.delete(entry.aid)

    def _delete_keys(self, data: gpm.DeleteData) -> bytes:
        keys = self.keys()
        keep = [k for k in keys if not (
            (data.key_id is None or k.kid == data.key_id)
            and (data.key_version is None or k.kvn == data.key_version))]
        if len(keep) == len(keys):
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such key")
        self.store_keys(keep)
        return b"\x00"

    # --- GET STATUS -------------------------------------------------------------------

    def _get_status(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        p1, p2 = command.p1, command.p2
        if p1 not in (0x80, 0x40, 0x20, 0x10) or p2 & ~0x03:
            raise _sw(SW.INCORRECT_P1P2)
        if p2 & 0x01:
            pending = state.status_more
            if pending is None or pending[0] != p1 or pending[1] != p2 & 0x02:
                raise _sw(SW.CONDITIONS_NOT_SATISFIED, "no GET STATUS to continue")
            entries = pending[2]
        else:
            entries = self._status_entries(p1, p2 & 0x02, command.data)
            if not entries:
                raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no matching entry")
        out = b""
        while entries and (not out or len(out) + len(entries[0]) <= STATUS_PAGE):
            out += entries[0]
            entries = entries[1:]
        if entries:
            state.status_more = (p1, p2 & 0x02, entries)
            raise ISOException(SW.MORE_DATA_AVAILABLE, "more entries", out)
        state.status_more = None
        return out

    def _status_entries(self, p1: int, tlv_format: int, data: bytes) -> list[bytes]:
        try:
            items = tlv.parse_all(data)
        except WrongData:
            raise _sw(SW.WRONG_DATA, "bad search criteria") from None
        search = tlv.find(items, 0x4F)
        if search is None:
            raise _sw(SW.WRONG_DATA, "GET STATUS needs 4F search criteria")
        prefix = search.value
        manager = self._manager()
        found: list[gpm.StatusEntry] = []
        if p1 == 0x80:
            isd = self._isd_entry()
            found.append(gpm.StatusEntry(isd.aid, manager.card_life_cycle, isd.privileges))
        elif p1 == 0x40:
            for e in manager.entries():
                if e.associated_sd is not None:
                    found.append(gpm.StatusEntry(e.aid, e.life_cycle, e.privileges,
                                                 e.load_file_aid, e.associated_sd))
        else:
            for lf in manager.load_files():
                code = manager.load_file_code(lf.aid)
                modules = tuple(code.modules) if (code is not None and p1 == 0x10) else ()
                found.append(gpm.StatusEntry(lf.aid, lf.life_cycle, b"\0\0\0",
                                             associated_sd=lf.associated_sd, modules=modules))
        return [e.encode_tlv() if tlv_format else e.encode_legacy(p1 == 0x10)
                for e in found if e.aid.startswith(prefix)]

    def _isd_entry(self) -> RegistryEntry:
        for e in self._manager().entries():
            if e.is_security_domain and e.associated_sd is None:
                return e
        raise _sw(SW.CONDITIONS_NOT_SATISFIED, "no issuer security domain")

    # --- SET STATUS -------------------------------------------------------------------

    def _set_status(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        p1, target = command.p1, command.p2
        manager = self._manager()
        me = self._entry()
        if p1 == 0x80:
            return self._set_card_status(target, me)
        if p1 not in (0x40, 0x60):
            raise _sw(SW.INCORRECT_P1P2)
        if manager.card_life_cycle == LifeCycle.CARD_LOCKED:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "the card is locked")
        entry = manager.entry(command.data)
        if entry is None:
            raise _sw(SW.REFERENCED_DATA_NOT_FOUND, "no such application")
        if entry.associated_sd is None:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "lock the ISD by locking the card")
        if p1 == 0x60 and not entry.is_security_domain:
            raise _sw(SW.INCORRECT_P1P2, "P1=60 is for security domains")
        if not self._owned(entry, Privilege.GLOBAL_LOCK) and entry.aid != self.aid:
            raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "application of another SD")
        targets = [entry] + ([e for e in manager.entries() if e.associated_sd == entry.aid]
                             if p1 == 0x60 else [])
        for item in targets:
            manager.set_life_cycle(item.aid, self._next_state(item, target))
        return b""

    @staticmethod
    def _next_state(entry: RegistryEntry, target: int) -> int:
        life = entry.life_cycle
        if target == 0x80:  # lock: remember the state under the lock bit
            if life & LifeCycle.LOCKED:
                raise _sw(SW.CONDITIONS_NOT_SATISFIED, "already locked")
            return life | LifeCycle.LOCKED
        if target == 0x00:  # unlock
            if not life & LifeCycle.LOCKED:
                raise _sw(SW.CONDITIONS_NOT_SATISFIED, "not locked")
            return life & 0x7F
        if life & LifeCycle.LOCKED:
            raise _sw(SW.CONDITIONS_NOT_SATISFIED, "locked")
        if entry.is_security_domain:
            allowed: dict[int, set[int]] = {0x03: {0x07, 0x0F}, 0x07: {0x0F}}
            if target not in allowed.get(life, set()):
                raise _sw(SW.WRONG_DATA, f"SD cannot go from {life:02X} to {target:02X}")
            return target
        if target & 0x07 != 0x07 or life & 0x07 != 0x07 or target < life:
            raise _sw(SW.WRONG_DATA, f"application cannot go from {life:02X} to {target:02X}")
        return target

    def _set_card_status(self, target: int, me: RegistryEntry) -> bytes:
        manager = self._manager()
        life = manager.card_life_cycle
        isd = me.associated_sd is None
        if target == LifeCycle.TERMINATED:
            if not me.has(Privilege.CARD_TERMINATE):
                raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "no Card Terminate privilege")
        elif target == LifeCycle.CARD_LOCKED:
            if not me.has(Privilege.CARD_LOCK):
                raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "no Card Lock privilege")
            if life != LifeCycle.SECURED:
                raise _sw(SW.CONDITIONS_NOT_SATISFIED, "only a SECURED card is locked")
        elif target == LifeCycle.SECURED and life == LifeCycle.CARD_LOCKED:
            if not me.has(Privilege.CARD_LOCK):
                raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "no Card Lock privilege")
        elif target in (LifeCycle.INITIALIZED, LifeCycle.SECURED):
            if not isd:
                raise _sw(SW.SECURITY_STATUS_NOT_SATISFIED, "only the ISD")
            order = [0x01, 0x07, 0x0F]  # OP_READY, INITIALIZED, SECURED
            if life not in order or order.index(target) <= order.index(life):
                raise _sw(SW.CONDITIONS_NOT_SATISFIED,
                          f"card cannot go from {life:02X} to {target:02X}")
        else:
            raise _sw(SW.WRONG_DATA, f"{target:02X} is not a card life-cycle state")
        manager.set_card_life_cycle(target)
        return b""

    # --- PUT KEY ----------------------------------------------------------------------

    def _put_key(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        layer = state.layer
        assert layer is not None
        old_kvn, kid = command.p1, command.p2 & 0x7F
        if not 0x01 <= kid <= 0x7F or old_kvn > 0x7F:
            raise _sw(SW.INCORRECT_P1P2)
        new_kvn, new_keys = decode_put_key(command.data, kid, layer.dek)
        if command.p2 & 0x80 == 0 and len(new_keys) > 1 and new_keys[0].key_type is \
                KeyType.AES:
            raise _sw(SW.WRONG_DATA, "several keys need P2 bit 8")
        keys = self.keys()
        if old_kvn == 0:
            if any(k.kvn == new_kvn and k.kid in {n.kid for n in new_keys} for k in keys):
                raise _sw(SW.WRONG_DATA, f"key version {new_kvn:02X} exists already")
        else:
            replaced = {(old_kvn, n.kid) for n in new_keys}
            if not any((k.kvn, k.kid) in replaced for k in keys):
                raise _sw(SW.REFERENCED_DATA_NOT_FOUND, f"no key version {old_kvn:02X}")
            keys = [k for k in keys if (k.kvn, k.kid) not in replaced]
        keys = [k for k in keys if (k.kvn, k.kid) not in {(n.kvn, n.kid) for n in new_keys}]
        self.store_keys(keys + new_keys)
        return bytes((new_kvn,)) + b"".join(k.kcv() for k in new_keys)

    # --- STORE DATA -------------------------------------------------------------------

    def _store_data(self, command: CommandAPDU, state: _ChannelState) -> bytes:
        if command.p2 != state.store_block % 256:
            state.store_block = 0
            raise _sw(SW.INCORRECT_P1P2, "STORE DATA block out of sequence")
        last = bool(command.p1 & 0x80)
        state.store_block = 0 if last else state.store_block + 1
        target = state.personalize
        manager = self._manager()
        target_entry = manager.entry(target) if target is not None else None
        if target is not None and target_entry is not None and not (
                target_entry.is_security_domain):
            if last:
                state.personalize = None
            return manager.forward_data(target, command.data)
        # DGIs for a security domain may straddle blocks: collect them up to the last one
        state.store_buffer += command.data
        if len(state.store_buffer) > 8192:
            state.store_buffer = bytearray()
            raise _sw(SW.NOT_ENOUGH_MEMORY, "personalisation data too large")
        if not last:
            return b""
        data, state.store_buffer = bytes(state.store_buffer), bytearray()
        state.personalize = None
        if target is not None and target != self.aid:
            return manager.forward_data(target, data)
        if command.p1 & 0x18 == 0x10:
            self._store_tlv(data)
        else:
            self._personalize(data)
        return b""

    def _store_tlv(self, data: bytes) -> None:
        for item in tlv.parse_all(data):
            if item.tag == 0x42:
                self.issuer_id = item.value
            elif item.tag == 0x45:
                self.card_image_number = item.value
            elif item.tag == 0xBF21:
                self.certificate_store = item.to_bytes()
            else:
                raise _sw(SW.REFERENCED_DATA_NOT_FOUND, f"cannot store tag {item.tag:X}")

    def _personalize(self, data: bytes) -> None:
        for dgi, value in parse_dgis(data):
            if dgi == DGI_KEYS:
                if len(value) < 2:
                    raise _sw(SW.WRONG_DATA, "key DGI is KVN, first KID, key blocks")
                kvn, first_kid, blocks = value[0], value[1], value[2:]
                try:
                    _, new_keys = decode_put_key(bytes((kvn,)) + blocks, first_kid, None)
                except WrongData as exc:
                    raise _sw(SW.WRONG_DATA, f"bad key DGI: {exc}") from None
                ids = {(k.kvn, k.kid) for k in new_keys}
                self.store_keys([k for k in self.keys() if (k.kvn, k.kid) not in ids]
                                + new_keys)
            elif dgi == DGI_ISSUER_ID:
                self.issuer_id = value
            elif dgi == DGI_CARD_IMAGE_NUMBER:
                self.card_image_number = value
            elif dgi == DGI_CPLC:
                self.cplc = value
            elif dgi == DGI_CERTIFICATE_STORE:
                self.certificate_store = value
            elif dgi == DGI_SCP03_I and len(value) == 1:
                self.scp03_i = value[0] & 0x70
            elif dgi == DGI_KMA_MODE and len(value) == 1:
                self.kma_mode = value[0] & 1
            elif dgi == DGI_SEQUENCE_COUNTER and len(value) == 3:
                self.sequence_counter = int.from_bytes(value, "big")
            elif dgi == DGI_KEY_DIVERSIFICATION_DATA and len(value) == 10:
                self.key_diversification_data = value
            else:
                raise _sw(SW.REFERENCED_DATA_NOT_FOUND, f"unknown DGI {dgi:04X}")

    # --- GET DATA ---------------------------------------------------------------------

    def _get_data(self, command: CommandAPDU) -> bytes:
        tag = command.p1 << 8 | command.p2
        if tag == 0x0066:
            return self._recognition()
        if tag == 0x00E0:
            return tlv.encode(0xE0, b"".join(tlv.encode(0xC0, k.information())
                                             for k in self.keys()))
        if tag == 0x9F7F and self.cplc:
            return tlv.encode(0x9F7F, self.cplc)
        if tag == 0xBF21 and self.certificate_store:
            return bytes(self.certificate_store)
        if tag == 0x00C1:
            return tlv.encode(0xC1, self.sequence_counter.to_bytes(3, "big"))
        if tag == 0x00C2:
            return tlv.encode(0xC2, self.confirmation_counter.to_bytes(2, "big"))
        if tag == 0x0042 and self.issuer_id:
            return tlv.encode(0x42, self.issuer_id)
        if tag == 0x0045 and self.card_image_number:
            return tlv.encode(0x45, self.card_image_number)
        if tag == 0x00CF:
            return tlv.encode(0xCF, bytes(self.key_diversification_data))
        raise _sw(SW.REFERENCED_DATA_NOT_FOUND, f"no data object {tag:04X}")


# --- DGIs -------------------------------------------------------------------------------


def dgi(number: int, value: bytes) -> bytes:
    """One DGI: 2-byte tag, length (1 byte, or FF + 2 bytes from 255 on), value."""
    if len(value) >= 0xFF:
        return number.to_bytes(2, "big") + b"\xFF" + len(value).to_bytes(2, "big") + value
    return number.to_bytes(2, "big") + bytes((len(value),)) + value


def parse_dgis(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    offset = 0
    while offset < len(data):
        if offset + 3 > len(data):
            raise _sw(SW.WRONG_DATA, "DGI header truncated")
        number = int.from_bytes(data[offset:offset + 2], "big")
        length = data[offset + 2]
        offset += 3
        if length == 0xFF:
            if offset + 2 > len(data):
                raise _sw(SW.WRONG_DATA, "DGI length truncated")
            length = int.from_bytes(data[offset:offset + 2], "big")
            offset += 2
        if offset + length > len(data):
            raise _sw(SW.WRONG_DATA, "DGI value runs past the data")
        out.append((number, bytes(data[offset:offset + length])))
        offset += length
    return out


def keys_dgi(keys: list[SdKey]) -> bytes:
    """DGI 8F01 for ``keys`` (all of one key version, consecutive identifiers)."""
    if not keys:
        raise ValueError("no keys")
    first = keys[0]
    body = bytes((first.kvn, first.kid)) + b"".join(encode_key_block(k, None) for k in keys)
    return dgi(DGI_KEYS, body)


def security_domain_class(builder: LoadFileBuilder) -> type[SecurityDomain]:
    """A SecurityDomain class whose LOAD turns Load File Data Blocks into code with ``builder``."""
    return type("SecurityDomain", (SecurityDomain,), {"load_file_builder": staticmethod(builder),
                                                      "__module__": __name__})

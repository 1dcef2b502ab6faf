"""What every Hydra value-added applet shares: its keys, its party, and its published source.

Each applet instance holds a P-256 signing key generated in the card at install (the card
issuer certifies it together with the applet's source hash, see
:mod:`smarthydra.parties.hydra`), and knows its one party's key-agreement key. Everything it
sends is a COSE_Sign1 statement sealed to that party (:mod:`.cose`), so the party can check
who computed it and nobody else on the way (hub host, CSP, DCC, other parties) can read it.

Install parameters are a canonical CBOR map: ``hub`` (the hub's name), ``party`` (the party's
name), ``party-ka`` (its key-agreement key ``x || y``), ``party-sig`` (its signing key, for
applets that take signed instructions), plus per-applet keys.

Secure channel to the party (GlobalPlatform): each applet is associated with its party's
supplementary security domain (install parameter ``sd``). The party's host opens SCP03 with
its SSD keys by sending INITIALIZE UPDATE and EXTERNAL AUTHENTICATE to the *applet*, which
passes them to its SD's :class:`~smarthydra.card.gp.sd.SecureChannelService`; from then on the
runtime unwraps every command and wraps every response with that SD's session keys. The
commands a party drives (:attr:`HydraApplet.party_commands`) are refused with ``6982``
unless they came through such a session at :data:`PARTY_LEVEL` (C-MAC, C-DECRYPTION, R-MAC,
R-ENCRYPTION). A party without the SSD's keys cannot open one; another party's session (on
its own SSD) ends when this applet is selected. The COSE signing and sealing stay on top:
the channel protects the hop into the chip, the envelope the whole way to the party.

Commands (CLA 80): ``02`` PUBLIC KEY answers the signing key ``x || y``; ``04`` APPEND
(a segment of the next command's data: secure messaging carries at most 239 plain bytes
per command); ``50``/``82`` the secure channel; the rest are the applet's own. Bad data
answers ``6A80``, a missing precondition ``6985``, no party session ``6982``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from typing import Any, ClassVar

import cbor2

from smarthydra.applets import cose
from smarthydra.applets.consent import ConsentError
from smarthydra.applets.tariff import TariffError
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, Applet, ISOException, PersistentBytes, PersistentInt
from smarthydra.card.gp.sd import AUTHENTICATED, SECURE_CHANNEL_PARAMETER, SecureChannelService
from smarthydra.card.gp.sm import C_DECRYPTION, C_MAC, R_ENCRYPTION, R_MAC
from smarthydra.card.keys import EcKeyHandle, KeyError_
from smarthydra.crypto import primitives

CLA = 0x80
INS_PUBLIC_KEY = 0x02
INS_APPEND = 0x04
INS_INITIALIZE_UPDATE = 0x50
INS_EXTERNAL_AUTHENTICATE = 0x82
#: GP security level a party's commands must arrive under: authenticated, C-MAC,
#: C-DECRYPTION, R-MAC, R-ENCRYPTION
PARTY_LEVEL = AUTHENTICATED | C_MAC | C_DECRYPTION | R_MAC | R_ENCRYPTION
MAX_COMMAND = 4096  # data of one command, APPENDed segments included


def source_hash(cls: type) -> bytes:
    """SHA-256 over the source of the modules an applet class declares as its code.

    This is the hash the card issuer certifies and parties compare with the published list:
    anyone can recompute it from the public source.
    """
    digest = hashlib.sha256()
    for name in (cls.__module__, *getattr(cls, "source_modules", ())):
        source = inspect.getsource(importlib.import_module(name)).encode()
        digest.update(len(name).to_bytes(2, "big") + name.encode())
        digest.update(len(source).to_bytes(4, "big") + source)
    return digest.digest()


def wrong_data(message: str) -> ISOException:
    return ISOException(SW.WRONG_DATA, message)


def not_now(message: str) -> ISOException:
    return ISOException(SW.CONDITIONS_NOT_SATISFIED, message)


def u32(data: bytes, offset: int = 0) -> int:
    if len(data) < offset + 4:
        raise ISOException(SW.WRONG_LENGTH, "a 4-byte field is missing")
    return int.from_bytes(data[offset:offset + 4], "big")


def day_range(data: bytes) -> tuple[int, int]:
    """Command data ``first day (4) || last day (4)`` as ordinals."""
    if len(data) != 8:
        raise ISOException(SW.WRONG_LENGTH, "a day range is 8 bytes")
    first, last = u32(data), u32(data, 4)
    if not 0 < first <= last or last - first > 400:
        raise wrong_data("a day range is 1..401 days")
    return first, last


def decode_cbor(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data)
    except Exception:  # cbor2 raises several types for bad input
        raise wrong_data(f"{what} is not CBOR") from None


class _CardEphemeral:
    """An ephemeral ECDH key inside the card (a key handle), for sealing one message."""

    def __init__(self, handle: EcKeyHandle) -> None:
        self.handle = handle
        self.xy = handle.generate()

    def public(self) -> bytes:
        return self.xy

    def ecdh(self, peer_xy: bytes) -> bytes:
        return self.handle.ecdh(peer_xy)


class HydraApplet(Applet):
    """Base of the value-added applets: keys, settings, sealing to the party."""

    role: ClassVar[str] = ""
    #: modules (besides the class's own) whose source is part of the published hash
    source_modules: ClassVar[tuple[str, ...]] = (
        "smarthydra.applets.base", "smarthydra.applets.cose",
    )
    #: settings keys an install must give
    required_settings: ClassVar[frozenset[str]] = frozenset({"hub", "party", "party-ka"})
    #: commands only the party sends, through its security domain's secure channel
    party_commands: ClassVar[frozenset[int]] = frozenset()
    #: the hub host feeds data in on its logical channel while the party's session (kept per
    #: channel by the security domain) is open on the party channel
    multiselectable = True

    settings_raw = PersistentBytes(max_size=2048)
    sealed_count = PersistentInt(size=4)

    def __init__(self) -> None:
        self.signing = self.card.ec_key("sign")
        self.ephemeral = self.card.ec_key("eph")
        self._settings: dict[str, Any] | None = None
        self._segments = bytearray()  # RAM: APPENDed data for the next command

    def install(self, params: bytes) -> None:
        settings = decode_cbor(params, "install parameters")
        if not isinstance(settings, dict) or not self.required_settings <= set(settings):
            missing = sorted(self.required_settings - set(settings or {}))
            raise wrong_data(f"install parameters lack {missing}")
        try:
            primitives.public_key_from_xy(settings["party-ka"])
        except (primitives.InvalidKey, TypeError):
            raise wrong_data("party-ka is not a P-256 point") from None
        self.settings_raw = cose.canonical(settings)
        self.signing.generate()

    @property
    def settings(self) -> dict[str, Any]:
        if self._settings is None:
            value = cbor2.loads(self.settings_raw) if self.settings_raw else {}
            self._settings = value if isinstance(value, dict) else {}
        return self._settings

    @property
    def hub(self) -> str:
        return str(self.settings.get("hub", ""))

    @property
    def party(self) -> str:
        return str(self.settings.get("party", ""))

    def party_signing_key(self) -> Any:
        raw = self.settings.get("party-sig")
        if not isinstance(raw, bytes):
            raise not_now("no party signing key was installed")
        return primitives.public_key_from_xy(raw)

    def verify_from_party(self, statement: bytes) -> Any:
        """The payload of an instruction signed by this applet's party."""
        try:
            return cose.verify_sign1(statement, self.party_signing_key())
        except cose.EnvelopeError as exc:
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, str(exc)) from None

    def sign_statement(self, payload: dict[str, Any]) -> bytes:
        return cose.sign1(payload, self.aid, self.signing.sign)

    def seal(self, payload: dict[str, Any], recipient: str | None = None,
             recipient_xy: bytes | None = None) -> bytes:
        """Sign ``payload`` and seal it to the party (or to another named recipient)."""
        statement = self.sign_statement(payload)
        ephemeral = _CardEphemeral(self.ephemeral)
        try:
            sealed = cose.seal(
                statement, sender=f"{self.hub}/{self.role}", recipient=recipient or self.party,
                recipient_xy=recipient_xy or self.settings["party-ka"], ephemeral=ephemeral,
                iv=self.card.random(12))
        finally:
            self.ephemeral.clear()
        self.sealed_count = (self.sealed_count + 1) % 2**32
        return sealed

    # --- the party's secure channel -------------------------------------------------------

    def secure_channel(self) -> SecureChannelService | None:
        """This applet's security domain's secure channel (None: no SD named or it refused)."""
        sd = self.settings.get("sd")
        if not isinstance(sd, bytes):
            return None
        service = self.card.lookup_shareable(sd, SECURE_CHANNEL_PARAMETER)
        return service if isinstance(service, SecureChannelService) else None

    def security_level(self) -> int:
        channel = self.secure_channel()
        return channel.security_level() if channel is not None else 0

    def select(self) -> bool:
        self._segments = bytearray()
        channel = self.secure_channel()
        if channel is not None:
            channel.reset_security()  # a session never outlives a selection
        return True

    def deselect(self) -> None:
        self._segments = bytearray()

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        if not apdu.cla & 0x80:  # proprietary class, on whichever logical channel
            raise ISOException(SW.CLA_NOT_SUPPORTED)
        ins = apdu.ins
        if ins in (INS_INITIALIZE_UPDATE, INS_EXTERNAL_AUTHENTICATE):
            channel = self.secure_channel()
            if channel is None:
                raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "no security domain channel")
            self._segments = bytearray()
            return channel.process_security(apdu.cla, ins, apdu.p1, apdu.p2, apdu.data)
        if ins == INS_PUBLIC_KEY:
            return self.signing.public_key()
        if ins in self.party_commands and self.security_level() & PARTY_LEVEL != PARTY_LEVEL:
            self._segments = bytearray()
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED,
                               "this command comes from the party over its secure channel")
        if ins == INS_APPEND:
            if len(self._segments) + len(apdu.data) > MAX_COMMAND:
                self._segments = bytearray()
                raise ISOException(SW.WRONG_LENGTH, f"a command carries at most {MAX_COMMAND}")
            self._segments += apdu.data
            return None
        data, self._segments = bytes(self._segments) + apdu.data, bytearray()
        try:
            return self.command(apdu, data)
        except (TariffError, ConsentError, cose.EnvelopeError, KeyError_) as exc:
            raise wrong_data(str(exc)) from None

    def command(self, apdu: APDU, data: bytes) -> bytes | None:
        """An applet command; ``data`` is its data with any APPENDed segments before it."""
        raise ISOException(SW.INS_NOT_SUPPORTED)

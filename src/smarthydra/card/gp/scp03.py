"""SCP03 (GlobalPlatform Card Specification v2.3 Amendment D): both ends of the channel.

* :func:`derive_session_keys`, :func:`card_cryptogram`, :func:`host_cryptogram`,
  :func:`pseudo_random_card_challenge`: the pure computations.
* :class:`InitializeUpdateResponse`: build and parse the INITIALIZE UPDATE response.
* :class:`Scp03HostSession`: produces INITIALIZE UPDATE / EXTERNAL AUTHENTICATE, checks the card
  cryptogram, then wraps commands and unwraps responses.
* :class:`Scp03CardSession`: answers INITIALIZE UPDATE, verifies EXTERNAL AUTHENTICATE, then
  unwraps commands and wraps responses. Failures raise :class:`~smarthydra.card.gp.errors.GpError`
  subclasses carrying the status word to return (:meth:`Scp03CardSession.process` turns them
  into bytes).

Randomness (host challenge, random card challenge) is injected; the pseudo-random card challenge
and the sequence counter make the card's side fully predictable, which is what lets an off-card
entity precompute a one-way script (:func:`precompute_scp03_script`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from smarthydra.card.gp.apdu import CommandApdu, ResponseApdu
from smarthydra.card.gp.errors import (
    AuthenticationFailed,
    ConditionsNotSatisfied,
    ConfigurationError,
    GpError,
    IncorrectParameters,
    MalformedApdu,
    ReferencedDataNotFound,
    SecurityStatusNotSatisfied,
    WrongData,
)
from smarthydra.card.gp.kdf import (
    DerivationConstant,
    check_aes_key,
    constant_time_equal,
    scp03_kdf,
)
from smarthydra.card.gp.sm import (
    C_MAC,
    R_ENCRYPTION,
    R_MAC,
    SecureMessaging,
    SessionKeys,
    check_security_level,
    describe_security_level,
    lc_field,
    mac_cla,
)

INS_INITIALIZE_UPDATE = 0x50
INS_EXTERNAL_AUTHENTICATE = 0x82
SCP03_ID = 0x03

# "i" parameter bits (Amendment D 5.1)
I_S16 = 0x01
I_PSEUDO_RANDOM_CHALLENGE = 0x10
I_R_MAC = 0x20
I_R_ENC = 0x40
I_KNOWN_BITS = I_S16 | I_PSEUDO_RANDOM_CHALLENGE | I_R_MAC | I_R_ENC

KDD_LENGTH = 10
SEQUENCE_COUNTER_MAX = 0xFFFFFF


@dataclass(frozen=True)
class Scp03StaticKeys:
    """A static SCP03 key set (K-ENC, K-MAC, K-DEK) and its key version number."""

    enc: bytes
    mac: bytes
    dek: bytes
    kvn: int = 0x30

    def __post_init__(self) -> None:
        check_aes_key(self.enc, "K-ENC")
        check_aes_key(self.mac, "K-MAC")
        check_aes_key(self.dek, "K-DEK")
        if not len(self.enc) == len(self.mac) == len(self.dek):
            raise ConfigurationError("K-ENC, K-MAC and K-DEK must have the same length")
        if not 0 <= self.kvn <= 0xFF:
            raise ConfigurationError("the key version number is one byte")

    @classmethod
    def test_keys(cls, kvn: int = 0x30) -> Scp03StaticKeys:
        """The GlobalPlatform default test key set: 40 41 ... 4F for all three keys."""
        key = bytes(range(0x40, 0x50))
        return cls(key, key, key, kvn)


# --- pure computations -----------------------------------------------------------------------


def derive_session_keys(
    keys: Scp03StaticKeys, host_challenge: bytes, card_challenge: bytes
) -> SessionKeys:
    """Amendment D 6.2.1: S-ENC, S-MAC, S-RMAC from context = host challenge || card challenge."""
    context = host_challenge + card_challenge
    bits = len(keys.enc) * 8
    return SessionKeys(
        s_enc=scp03_kdf(keys.enc, DerivationConstant.S_ENC, context, bits),
        s_mac=scp03_kdf(keys.mac, DerivationConstant.S_MAC, context, bits),
        s_rmac=scp03_kdf(keys.mac, DerivationConstant.S_RMAC, context, bits),
    )


def card_cryptogram(s_mac: bytes, host_challenge: bytes, card_challenge: bytes) -> bytes:
    length = len(card_challenge)
    return scp03_kdf(
        s_mac, DerivationConstant.CARD_CRYPTOGRAM, host_challenge + card_challenge, length * 8
    )


def host_cryptogram(s_mac: bytes, host_challenge: bytes, card_challenge: bytes) -> bytes:
    length = len(card_challenge)
    return scp03_kdf(
        s_mac, DerivationConstant.HOST_CRYPTOGRAM, host_challenge + card_challenge, length * 8
    )


def pseudo_random_card_challenge(
    k_enc: bytes, sequence_counter: int, aid: bytes, s_mode: int = 8
) -> bytes:
    """Amendment D 6.2.2.1: KDF(K-ENC, 02, context = sequence counter (3) || invoking AID)."""
    _check_s_mode(s_mode)
    if not 0 <= sequence_counter <= SEQUENCE_COUNTER_MAX:
        raise ConfigurationError("the SCP03 sequence counter is 3 bytes")
    if not 5 <= len(aid) <= 16:
        raise ConfigurationError(f"an AID is 5 to 16 bytes, got {len(aid)}")
    context = sequence_counter.to_bytes(3, "big") + aid
    return scp03_kdf(k_enc, DerivationConstant.CARD_CHALLENGE, context, s_mode * 8)


def _check_s_mode(s_mode: int) -> None:
    if s_mode not in (8, 16):
        raise ConfigurationError("SCP03 runs in S8 or S16 mode")


# --- INITIALIZE UPDATE -----------------------------------------------------------------------


@dataclass(frozen=True)
class InitializeUpdateResponse:
    """Amendment D table 7-3 (response data without the status word)."""

    key_diversification_data: bytes
    kvn: int
    i_param: int
    card_challenge: bytes
    card_cryptogram: bytes
    sequence_counter: int | None = None
    scp_id: int = SCP03_ID

    @property
    def s_mode(self) -> int:
        return len(self.card_challenge)

    def to_bytes(self) -> bytes:
        out = self.key_diversification_data + bytes((self.kvn, self.scp_id, self.i_param))
        out += self.card_challenge + self.card_cryptogram
        if self.sequence_counter is not None:
            out += self.sequence_counter.to_bytes(3, "big")
        return out

    @classmethod
    def parse(cls, data: bytes) -> InitializeUpdateResponse:
        data = bytes(data)
        if len(data) < KDD_LENGTH + 3:
            raise WrongData(f"INITIALIZE UPDATE response of {len(data)} bytes is too short")
        kdd = data[:KDD_LENGTH]
        kvn, scp_id, i_param = data[KDD_LENGTH : KDD_LENGTH + 3]
        if scp_id != SCP03_ID:
            raise WrongData(f"card answered for SCP{scp_id:02X}, not SCP03")
        s_mode = 16 if i_param & I_S16 else 8
        rest = data[KDD_LENGTH + 3 :]
        with_counter = bool(i_param & I_PSEUDO_RANDOM_CHALLENGE)
        expected = 2 * s_mode + (3 if with_counter else 0)
        if len(rest) != expected:
            raise WrongData(
                f"INITIALIZE UPDATE response: expected {KDD_LENGTH + 3 + expected} bytes for "
                f"i={i_param:02X}, got {len(data)}"
            )
        counter = int.from_bytes(rest[2 * s_mode :], "big") if with_counter else None
        return cls(kdd, kvn, i_param, rest[:s_mode], rest[s_mode : 2 * s_mode], counter)


def build_initialize_update(
    host_challenge: bytes, kvn: int = 0, logical_channel: int = 0, le: bool = True
) -> bytes:
    _check_s_mode(len(host_challenge))
    cla = _gp_cla(logical_channel)
    return CommandApdu(
        cla, INS_INITIALIZE_UPDATE, kvn, 0x00, host_challenge, 0x00 if le else None
    ).to_bytes()


def _gp_cla(logical_channel: int) -> int:
    if 0 <= logical_channel <= 3:
        return 0x80 | logical_channel
    if 4 <= logical_channel <= 19:
        return 0xC0 | (logical_channel - 4)
    raise ConfigurationError("logical channels are numbered 0 to 19")


def _split_sw(response: bytes) -> ResponseApdu:
    return ResponseApdu.parse(response)


# --- host side -------------------------------------------------------------------------------


class HostState(Enum):
    NEW = "new"
    INITIALIZED = "initialized"
    AUTHENTICATING = "authenticating"
    OPEN = "open"


class Scp03HostSession:
    """The off-card entity's side of one SCP03 session."""

    def __init__(
        self,
        keys: Scp03StaticKeys,
        *,
        host_challenge: bytes | None = None,
        s_mode: int = 8,
        kvn: int | None = None,
        logical_channel: int = 0,
        aid: bytes | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``kvn`` defaults to the key set's; 0 asks the card for its first key set.

        ``aid`` (the security domain's AID), when given, makes the host also check that a
        pseudo-random card challenge is the one the sequence counter predicts.
        """
        _check_s_mode(s_mode)
        self.keys = keys
        self.host_challenge = random_bytes(s_mode) if host_challenge is None else host_challenge
        if len(self.host_challenge) != s_mode:
            raise ConfigurationError(f"the host challenge is {s_mode} bytes in S{s_mode} mode")
        self.s_mode = s_mode
        self.kvn = keys.kvn if kvn is None else kvn
        self.logical_channel = logical_channel
        self.aid = aid
        self.state = HostState.NEW
        self.card_response: InitializeUpdateResponse | None = None
        self.session_keys: SessionKeys | None = None
        self.host_cryptogram: bytes | None = None
        self.sm: SecureMessaging | None = None

    @property
    def card_challenge(self) -> bytes:
        return self._card_response().card_challenge

    @property
    def sequence_counter(self) -> int | None:
        return self._card_response().sequence_counter

    @property
    def i_param(self) -> int:
        return self._card_response().i_param

    def _card_response(self) -> InitializeUpdateResponse:
        if self.card_response is None:
            raise ConditionsNotSatisfied("no INITIALIZE UPDATE response processed yet")
        return self.card_response

    def initialize_update(self, le: bool = True) -> bytes:
        return build_initialize_update(self.host_challenge, self.kvn, self.logical_channel, le)

    def process_initialize_update_response(self, response: bytes) -> InitializeUpdateResponse:
        """Check the card's response (data || SW) and its card cryptogram; derive session keys."""
        rsp = _split_sw(response)
        if rsp.sw != 0x9000:
            raise AuthenticationFailed(f"INITIALIZE UPDATE failed with SW {rsp.sw:04X}", sw=rsp.sw)
        parsed = InitializeUpdateResponse.parse(rsp.data)
        if parsed.s_mode != self.s_mode:
            raise WrongData(f"card answered in S{parsed.s_mode} mode, host asked S{self.s_mode}")
        if self.kvn and parsed.kvn != self.kvn:
            raise WrongData(f"card used key version {parsed.kvn:02X}, host asked {self.kvn:02X}")
        if (
            self.aid is not None
            and parsed.sequence_counter is not None
            and not constant_time_equal(
                parsed.card_challenge,
                pseudo_random_card_challenge(
                    self.keys.enc, parsed.sequence_counter, self.aid, self.s_mode
                ),
            )
        ):
            raise AuthenticationFailed("pseudo-random card challenge does not match its counter")
        keys = derive_session_keys(self.keys, self.host_challenge, parsed.card_challenge)
        expected = card_cryptogram(keys.s_mac, self.host_challenge, parsed.card_challenge)
        if not constant_time_equal(expected, parsed.card_cryptogram):
            raise AuthenticationFailed("card cryptogram does not verify: wrong keys?")
        self.card_response = parsed
        self.session_keys = keys
        self.host_cryptogram = host_cryptogram(
            keys.s_mac, self.host_challenge, parsed.card_challenge
        )
        self.state = HostState.INITIALIZED
        return parsed

    def external_authenticate(self, security_level: int = C_MAC) -> bytes:
        if self.state is not HostState.INITIALIZED or self.session_keys is None:
            raise ConditionsNotSatisfied(
                "EXTERNAL AUTHENTICATE needs a processed INITIALIZE UPDATE"
            )
        check_security_level(security_level)
        i_param = self.i_param
        if security_level & R_MAC and not i_param & I_R_MAC:
            raise ConfigurationError(f"card (i={i_param:02X}) does not support R-MAC")
        if security_level & R_ENCRYPTION and not i_param & I_R_ENC:
            raise ConfigurationError(f"card (i={i_param:02X}) does not support R-ENCRYPTION")
        assert self.host_cryptogram is not None
        self.sm = SecureMessaging(self.session_keys, security_level, self.s_mode)
        cla = _gp_cla(self.logical_channel)
        lc = len(self.host_cryptogram) + self.s_mode
        header = bytes((mac_cla(cla), INS_EXTERNAL_AUTHENTICATE, security_level, 0x00, lc))
        mac = self.sm.command_mac(header, self.host_cryptogram)[: self.s_mode]
        self.state = HostState.AUTHENTICATING
        sm_cla = mac_cla(cla) | (cla & (0x0F if cla & 0x40 else 0x03))
        return (
            bytes((sm_cla, INS_EXTERNAL_AUTHENTICATE, security_level, 0x00, lc))
            + self.host_cryptogram
            + mac
        )

    def process_external_authenticate_response(self, response: bytes) -> None:
        rsp = _split_sw(response)
        if self.state is not HostState.AUTHENTICATING:
            raise ConditionsNotSatisfied("no EXTERNAL AUTHENTICATE is pending")
        if rsp.sw != 0x9000:
            raise AuthenticationFailed(
                f"EXTERNAL AUTHENTICATE refused with SW {rsp.sw:04X}", sw=rsp.sw
            )
        self.state = HostState.OPEN

    def mark_authenticated(self) -> None:
        """Treat EXTERNAL AUTHENTICATE as accepted (one-way scripts never see the response)."""
        if self.state is not HostState.AUTHENTICATING:
            raise ConditionsNotSatisfied("no EXTERNAL AUTHENTICATE is pending")
        self.state = HostState.OPEN

    def _open_sm(self) -> SecureMessaging:
        if self.state is not HostState.OPEN or self.sm is None:
            raise ConditionsNotSatisfied("the secure channel is not open")
        return self.sm

    def wrap(self, command: bytes) -> bytes:
        return self._open_sm().host_wrap(command)

    def unwrap(self, response: bytes) -> ResponseApdu:
        return self._open_sm().host_unwrap(response)


# --- card side -------------------------------------------------------------------------------


@dataclass
class Scp03CardConfig:
    """What the security domain advertises and how it makes card challenges.

    ``i_param`` without the S16 bit (the card sets it when the host asks for S16 and
    ``s16_supported``). A pseudo-random challenge needs ``aid`` (the invoking security domain's
    AID); without it, ``random_bytes`` supplies the challenge even when i advertises
    pseudo-random, which is only for replaying captured sessions.
    """

    i_param: int = I_PSEUDO_RANDOM_CHALLENGE | I_R_MAC | I_R_ENC
    key_diversification_data: bytes = bytes(KDD_LENGTH)
    aid: bytes | None = None
    s16_supported: bool = True
    s8_supported: bool = True
    sequence_counter: int = 0
    key_sets: Sequence[Scp03StaticKeys] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.i_param & ~I_KNOWN_BITS & 0xFF or self.i_param & I_S16:
            raise ConfigurationError(f"i parameter {self.i_param:02X} has unknown or S16 bits set")
        if self.i_param & I_R_ENC and not self.i_param & I_R_MAC:
            raise ConfigurationError("R-ENCRYPTION support requires R-MAC support")
        if len(self.key_diversification_data) != KDD_LENGTH:
            raise ConfigurationError("key diversification data is 10 bytes")


class CardState(Enum):
    IDLE = "idle"
    INITIALIZED = "initialized"
    OPEN = "open"


class Scp03CardSession:
    """A security domain's side of SCP03 sessions (one at a time on one logical channel)."""

    def __init__(
        self,
        config: Scp03CardConfig,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not config.key_sets:
            raise ConfigurationError("the card needs at least one SCP03 key set")
        self.config = config
        self.random_bytes = random_bytes
        self.sequence_counter = config.sequence_counter
        self.reset()

    def reset(self) -> None:
        self.state = CardState.IDLE
        self.sm: SecureMessaging | None = None
        self._pending: tuple[SessionKeys, bytes, bytes, int] | None = None

    @property
    def security_level(self) -> int:
        return self.sm.security_level if self.sm is not None and self.state is CardState.OPEN else 0

    def _key_set(self, kvn: int) -> Scp03StaticKeys:
        if kvn == 0:
            return self.config.key_sets[0]
        for keys in self.config.key_sets:
            if keys.kvn == kvn:
                return keys
        raise ReferencedDataNotFound(f"no SCP03 key set with version {kvn:02X}")

    def initialize_update(self, command: bytes) -> bytes:
        """Answer INITIALIZE UPDATE; returns the response data || 9000."""
        self.reset()
        apdu = CommandApdu.parse(command)
        if apdu.ins != INS_INITIALIZE_UPDATE or apdu.cla & 0x80 == 0:
            raise MalformedApdu("not an INITIALIZE UPDATE command", sw=0x6D00)
        if apdu.p2 != 0x00:
            raise IncorrectParameters("INITIALIZE UPDATE P2 must be 00")
        s_mode = len(apdu.data)
        if (s_mode == 8 and not self.config.s8_supported) or (
            s_mode == 16 and not self.config.s16_supported
        ):
            raise MalformedApdu(f"S{s_mode} mode not supported by this card")
        if s_mode not in (8, 16):
            raise MalformedApdu(f"host challenge of {s_mode} bytes (expected 8 or 16)")
        keys = self._key_set(apdu.p1)
        i_param = self.config.i_param | (I_S16 if s_mode == 16 else 0)
        counter: int | None = None
        if i_param & I_PSEUDO_RANDOM_CHALLENGE:
            if self.sequence_counter >= SEQUENCE_COUNTER_MAX:
                raise ConditionsNotSatisfied("the SCP03 sequence counter is exhausted")
            self.sequence_counter += 1
            counter = self.sequence_counter
        if counter is not None and self.config.aid is not None:
            card_challenge = pseudo_random_card_challenge(
                keys.enc, counter, self.config.aid, s_mode
            )
        else:
            card_challenge = self.random_bytes(s_mode)
            if len(card_challenge) != s_mode:
                raise ConfigurationError("random_bytes returned the wrong number of bytes")
        host_challenge = apdu.data
        session = derive_session_keys(keys, host_challenge, card_challenge)
        response = InitializeUpdateResponse(
            self.config.key_diversification_data,
            keys.kvn,
            i_param,
            card_challenge,
            card_cryptogram(session.s_mac, host_challenge, card_challenge),
            counter,
        )
        expected_host = host_cryptogram(session.s_mac, host_challenge, card_challenge)
        self._pending = (session, expected_host, host_challenge, i_param)
        self.state = CardState.INITIALIZED
        return response.to_bytes() + b"\x90\x00"

    def external_authenticate(self, command: bytes, *, extended: bool = False) -> bytes:
        """Verify EXTERNAL AUTHENTICATE (host cryptogram and C-MAC); returns 9000.

        ``extended``: it arrived as an extended-length APDU (see :func:`sm.lc_field`)."""
        if self.state is not CardState.INITIALIZED or self._pending is None:
            raise ConditionsNotSatisfied("EXTERNAL AUTHENTICATE without INITIALIZE UPDATE")
        session, expected_host, _host_challenge, i_param = self._pending
        s_mode = len(expected_host)
        try:
            apdu = CommandApdu.parse(command)
            if apdu.ins != INS_EXTERNAL_AUTHENTICATE:
                raise MalformedApdu("not an EXTERNAL AUTHENTICATE command", sw=0x6D00)
            level = apdu.p1
            try:
                check_security_level(level)
            except ConfigurationError:
                raise IncorrectParameters(f"security level {level:02X} is invalid") from None
            if level & R_MAC and not i_param & I_R_MAC:
                raise IncorrectParameters("R-MAC is not supported by this security domain")
            if level & R_ENCRYPTION and not i_param & I_R_ENC:
                raise IncorrectParameters("R-ENCRYPTION is not supported by this security domain")
            if len(apdu.data) != 2 * s_mode:
                raise MalformedApdu(f"EXTERNAL AUTHENTICATE data must be {2 * s_mode} bytes")
            sm = SecureMessaging(session, level, s_mode)
            header = bytes((mac_cla(apdu.cla), apdu.ins, apdu.p1, apdu.p2)) + lc_field(
                len(apdu.data), extended)
            cryptogram, mac = apdu.data[:s_mode], apdu.data[s_mode:]
            if not constant_time_equal(cryptogram, expected_host):
                raise AuthenticationFailed("host cryptogram does not verify")
            if not constant_time_equal(mac, sm.command_mac(header, cryptogram)[:s_mode]):
                raise SecurityStatusNotSatisfied("EXTERNAL AUTHENTICATE C-MAC does not verify")
        except GpError:
            self.reset()
            raise
        self.sm = sm
        self._pending = None
        self.state = CardState.OPEN
        return b"\x90\x00"

    def _open_sm(self) -> SecureMessaging:
        if self.state is not CardState.OPEN or self.sm is None:
            raise SecurityStatusNotSatisfied("no secure channel session is open")
        return self.sm

    def unwrap_command(self, command: bytes, *, extended: bool = False) -> CommandApdu:
        """Verify and decrypt one command; a failure closes the session (Amendment D 6.2.4)."""
        sm = self._open_sm()
        try:
            return sm.card_unwrap(command, extended=extended)
        except GpError:
            if not sm.open:
                self.reset()
            raise

    def wrap_response(self, data: bytes, sw: int = 0x9000) -> bytes:
        if self.state is not CardState.OPEN or self.sm is None:
            return bytes(data) + sw.to_bytes(2, "big")
        return self.sm.card_wrap(data, sw)

    def process(
        self, command: bytes, handler: Callable[[CommandApdu], tuple[bytes, int]] | None = None
    ) -> bytes:
        """Handle one APDU end to end: secure-channel commands here, others via ``handler``.

        Errors become their status words; never raises for bad input.
        """
        try:
            apdu = CommandApdu.parse(command)
            if apdu.cla & 0x80 and apdu.ins == INS_INITIALIZE_UPDATE:
                return self.initialize_update(command)
            if apdu.cla & 0x80 and apdu.ins == INS_EXTERNAL_AUTHENTICATE:
                return self.external_authenticate(command)
            plain = self.unwrap_command(command)
        except GpError as exc:
            return exc.sw_bytes
        if handler is None:
            return self.wrap_response(b"", 0x9000)
        data, sw = handler(plain)
        return self.wrap_response(data, sw)


def describe(level: int) -> str:
    return describe_security_level(level)


def precompute_scp03_script(
    keys: Scp03StaticKeys,
    *,
    aid: bytes,
    sequence_counter: int,
    commands: Sequence[bytes],
    security_level: int = 0x03,
    host_challenge: bytes,
    s_mode: int = 8,
    key_diversification_data: bytes = bytes(KDD_LENGTH),
    i_param: int = I_PSEUDO_RANDOM_CHALLENGE | I_R_MAC | I_R_ENC,
) -> list[bytes]:
    """A one-way SCP03 script for a card with pseudo-random challenges.

    ``sequence_counter`` is the value the card will use (its stored counter plus one). Returns
    INITIALIZE UPDATE, EXTERNAL AUTHENTICATE and every command wrapped; nothing from the card is
    needed, so the script can travel store-and-forward.
    """
    if s_mode == 16:
        i_param |= I_S16
    card_challenge = pseudo_random_card_challenge(keys.enc, sequence_counter, aid, s_mode)
    session = derive_session_keys(keys, host_challenge, card_challenge)
    response = InitializeUpdateResponse(
        key_diversification_data,
        keys.kvn,
        i_param,
        card_challenge,
        card_cryptogram(session.s_mac, host_challenge, card_challenge),
        sequence_counter,
    )
    host = Scp03HostSession(keys, host_challenge=host_challenge, s_mode=s_mode, aid=aid)
    script = [host.initialize_update()]
    host.process_initialize_update_response(response.to_bytes() + b"\x90\x00")
    script.append(host.external_authenticate(security_level))
    host.mark_authenticated()
    script.extend(host.wrap(command) for command in commands)
    return script

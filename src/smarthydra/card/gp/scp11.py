"""SCP11a/b/c (GlobalPlatform Card Specification v2.3 Amendment F): both ends of the channel.

Key agreement (Amendment F 3.1):
* ShSee = ECDH between the ephemeral keys (SCP11c: the SD's static key stands in for its
  ephemeral one, which is what lets a host precompute a whole script);
* ShSs  = ECDH between the OCE's static key (SCP11b: its ephemeral key) and the SD's static key;
* ANSI X9.63 KDF with SHA-256 over ``ShSee || ShSs`` with SharedInfo = key usage || key type ||
  key length, giving receipt key || S-ENC || S-MAC || S-RMAC || S-DEK;
* receipt = AES-CMAC(receipt key, command data (A6 control reference template || 5F49 ePK.OCE)
  || 5F49 ePK.SD); it is the first MAC chaining value. Secure messaging is then SCP03's
  (:mod:`smarthydra.card.gp.sm`) with C-MAC, C-DEC, R-MAC and R-ENC all on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from smarthydra.card.gp import tlv
from smarthydra.card.gp.apdu import CommandApdu, ResponseApdu
from smarthydra.card.gp.certificates import (
    Scp11Certificate,
    load_point,
    parse_certificates,
    point_bytes,
)
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
from smarthydra.card.gp.kdf import constant_time_equal
from smarthydra.card.gp.sm import SecureMessaging, SessionKeys
from smarthydra.crypto.primitives import aes_cmac

INS_PERFORM_SECURITY_OPERATION = 0x2A
INS_MUTUAL_AUTHENTICATE = 0x82
INS_INTERNAL_AUTHENTICATE = 0x88
SCP11_ID = 0x11
KEY_USAGE_FULL = 0x3C  # C-MAC, C-DECRYPTION, R-MAC, R-ENCRYPTION
KEY_TYPE_AES = 0x88
SECURITY_LEVEL = 0x33
TAG_CONTROL_REFERENCE = 0xA6
TAG_EPHEMERAL_KEY = 0x5F49
TAG_RECEIPT = 0x86


class Scp11Variant(Enum):
    """The SCP11 variant and its "i" parameter in tag 90 (Amendment F 5.1)."""

    A = 0x01
    B = 0x00
    C = 0x03

    @property
    def default_kid(self) -> int:
        return {Scp11Variant.A: 0x11, Scp11Variant.B: 0x13, Scp11Variant.C: 0x15}[self]

    @property
    def authenticates_oce(self) -> bool:
        return self is not Scp11Variant.B


def ecka(private: ec.EllipticCurvePrivateKey, public: ec.EllipticCurvePublicKey) -> bytes:
    """ECKA-DH (BSI TR-03111): the x coordinate of the shared point."""
    if private.curve.name != public.curve.name:
        raise WrongData(f"key agreement between {private.curve.name} and {public.curve.name}")
    return private.exchange(ec.ECDH(), public)


@dataclass(frozen=True)
class Scp11Keys:
    receipt_key: bytes
    session: SessionKeys


def derive_scp11_keys(sh_see: bytes, sh_ss: bytes, key_length: int) -> Scp11Keys:
    """X9.63 KDF (SHA-256) over ShSee || ShSs, SharedInfo = 3C 88 <key length>."""
    if key_length not in (16, 24, 32):
        raise ConfigurationError("SCP11 session keys are AES-128/192/256")
    shared_info = bytes((KEY_USAGE_FULL, KEY_TYPE_AES, key_length))
    okm = X963KDF(hashes.SHA256(), 5 * key_length, shared_info).derive(sh_see + sh_ss)
    parts = [okm[i * key_length : (i + 1) * key_length] for i in range(5)]
    return Scp11Keys(parts[0], SessionKeys(parts[1], parts[2], parts[3], parts[4]))


def receipt(receipt_key: bytes, command_data: bytes, card_ephemeral_tlv: bytes) -> bytes:
    return aes_cmac(receipt_key, command_data + card_ephemeral_tlv)


def control_reference_template(variant: Scp11Variant, key_length: int) -> bytes:
    body = (
        tlv.encode(0x90, bytes((SCP11_ID, variant.value)))
        + tlv.encode(0x95, bytes((KEY_USAGE_FULL,)))
        + tlv.encode(0x80, bytes((KEY_TYPE_AES,)))
        + tlv.encode(0x81, bytes((key_length,)))
    )
    return tlv.encode(TAG_CONTROL_REFERENCE, body)


@dataclass(frozen=True)
class AuthenticateRequest:
    """The parsed data field of MUTUAL / INTERNAL AUTHENTICATE."""

    variant: Scp11Variant
    key_length: int
    ephemeral_point: bytes

    @classmethod
    def parse(cls, data: bytes) -> AuthenticateRequest:
        items = tlv.parse_all(data)
        crt = tlv.require(items, TAG_CONTROL_REFERENCE, "authenticate data").children()
        scp = tlv.require(crt, 0x90, "control reference template").value
        if len(scp) != 2 or scp[0] != SCP11_ID:
            raise WrongData("tag 90 must name SCP11 and its parameter")
        try:
            variant = Scp11Variant(scp[1])
        except ValueError:
            raise WrongData(f"unknown SCP11 parameter {scp[1]:02X}") from None
        usage = tlv.require(crt, 0x95, "control reference template").value
        key_type = tlv.require(crt, 0x80, "control reference template").value
        length = tlv.require(crt, 0x81, "control reference template").value
        if usage != bytes((KEY_USAGE_FULL,)):
            raise WrongData("only key usage 3C (C-MAC, C-DEC, R-MAC, R-ENC) is supported")
        if key_type != bytes((KEY_TYPE_AES,)):
            raise WrongData("only AES session keys (key type 88) are supported")
        if len(length) != 1 or length[0] not in (16, 24, 32):
            raise WrongData("session key length must be 16, 24 or 32")
        for item in crt:
            if item.tag not in (0x90, 0x95, 0x80, 0x81):
                raise WrongData(f"unsupported tag {item.tag:X} in the control reference template")
        point = tlv.require(items, TAG_EPHEMERAL_KEY, "authenticate data").value
        return cls(variant, length[0], point)


# --- host side -------------------------------------------------------------------------------


class Scp11HostSession:
    """The off-card entity's side of one SCP11 session.

    ``sd_public_key`` is PK.SD (from the security domain's certificate store, verified by the
    caller against its CA). SCP11a/c also need ``oce_private_key`` (SK.OCE) and, to send them with
    PERFORM SECURITY OPERATION, ``oce_certificates`` (encoded, root-most first).
    ``ephemeral_key`` (eSK.OCE) is injected; ``new_ephemeral_key`` generates one otherwise.
    """

    def __init__(
        self,
        variant: Scp11Variant,
        sd_public_key: ec.EllipticCurvePublicKey,
        *,
        kvn: int,
        kid: int | None = None,
        oce_private_key: ec.EllipticCurvePrivateKey | None = None,
        oce_certificates: Sequence[bytes] = (),
        oce_kvn: int | None = None,
        oce_kid: int = 0x10,
        ephemeral_key: ec.EllipticCurvePrivateKey | None = None,
        key_length: int = 16,
        s_mode: int = 8,
        new_ephemeral_key: Callable[[ec.EllipticCurve], ec.EllipticCurvePrivateKey] | None = None,
    ) -> None:
        if variant.authenticates_oce and oce_private_key is None:
            raise ConfigurationError(f"SCP11{variant.name.lower()} needs the OCE's static key")
        if key_length not in (16, 24, 32) or s_mode not in (8, 16):
            raise ConfigurationError("key length 16/24/32 and S8 or S16 mode")
        curve = sd_public_key.curve
        if ephemeral_key is None:
            ephemeral_key = (new_ephemeral_key or ec.generate_private_key)(curve)
        if ephemeral_key.curve.name != curve.name:
            raise ConfigurationError("the ephemeral key must be on the SD key's curve")
        self.variant = variant
        self.sd_public_key = sd_public_key
        self.kvn = kvn
        self.kid = variant.default_kid if kid is None else kid
        self.oce_private_key = oce_private_key
        self.oce_certificates = list(oce_certificates)
        self.oce_kvn = kvn if oce_kvn is None else oce_kvn
        self.oce_kid = oce_kid
        self.ephemeral_key = ephemeral_key
        self.key_length = key_length
        self.s_mode = s_mode
        self.command_data: bytes | None = None
        self.receipt: bytes | None = None
        self.keys: Scp11Keys | None = None
        self.sm: SecureMessaging | None = None

    def perform_security_operation(self) -> list[bytes]:
        """PERFORM SECURITY OPERATION commands carrying the OCE certificate chain (SCP11a/c)."""
        out = []
        for index, cert in enumerate(self.oce_certificates):
            more = 0x80 if index < len(self.oce_certificates) - 1 else 0x00
            out.append(
                CommandApdu(
                    0x80, INS_PERFORM_SECURITY_OPERATION, self.oce_kvn, self.oce_kid | more, cert
                ).to_bytes()
            )
        return out

    def authenticate(self) -> bytes:
        """MUTUAL AUTHENTICATE (SCP11a/c) or INTERNAL AUTHENTICATE (SCP11b)."""
        self.command_data = control_reference_template(self.variant, self.key_length) + tlv.encode(
            TAG_EPHEMERAL_KEY, point_bytes(self.ephemeral_key.public_key())
        )
        ins = (
            INS_INTERNAL_AUTHENTICATE if self.variant is Scp11Variant.B else INS_MUTUAL_AUTHENTICATE
        )
        return CommandApdu(0x80, ins, self.kvn, self.kid, self.command_data, 0x00).to_bytes()

    def _agree(self, card_point: bytes) -> Scp11Keys:
        curve = self.sd_public_key.curve
        card_key = load_point(curve, card_point)
        sh_see = ecka(self.ephemeral_key, card_key)
        static = self.ephemeral_key if self.variant is Scp11Variant.B else self.oce_private_key
        assert static is not None
        sh_ss = ecka(static, self.sd_public_key)
        return derive_scp11_keys(sh_see, sh_ss, self.key_length)

    def expected_response(self) -> bytes:
        """SCP11c only: the card's response, which the host can compute on its own."""
        if self.variant is not Scp11Variant.C or self.command_data is None:
            raise ConditionsNotSatisfied("only an SCP11c authenticate response is predictable")
        card_tlv = tlv.encode(TAG_EPHEMERAL_KEY, point_bytes(self.sd_public_key))
        keys = self._agree(point_bytes(self.sd_public_key))
        value = receipt(keys.receipt_key, self.command_data, card_tlv)
        return card_tlv + tlv.encode(TAG_RECEIPT, value) + b"\x90\x00"

    def process_authenticate_response(self, response: bytes) -> None:
        """Check the receipt in the card's response (data || SW) and open secure messaging."""
        if self.command_data is None:
            raise ConditionsNotSatisfied("no authenticate command was produced")
        rsp = ResponseApdu.parse(response)
        if rsp.sw != 0x9000:
            raise AuthenticationFailed(f"authenticate refused with SW {rsp.sw:04X}", sw=rsp.sw)
        items = tlv.parse_all(rsp.data)
        card_tlv = tlv.require(items, TAG_EPHEMERAL_KEY, "authenticate response")
        got = tlv.require(items, TAG_RECEIPT, "authenticate response").value
        keys = self._agree(card_tlv.value)
        expected = receipt(keys.receipt_key, self.command_data, card_tlv.to_bytes())
        if not constant_time_equal(expected, got):
            raise AuthenticationFailed("SCP11 receipt does not verify")
        self.keys = keys
        self.receipt = expected
        self.sm = SecureMessaging(keys.session, SECURITY_LEVEL, self.s_mode, expected)

    def _open_sm(self) -> SecureMessaging:
        if self.sm is None:
            raise ConditionsNotSatisfied("the SCP11 secure channel is not open")
        return self.sm

    def wrap(self, command: bytes) -> bytes:
        return self._open_sm().host_wrap(command)

    def unwrap(self, response: bytes) -> ResponseApdu:
        return self._open_sm().host_unwrap(response)


@dataclass(frozen=True)
class Scp11Script:
    """A precomputed SCP11c script and what the card will answer to its authenticate command."""

    apdus: list[bytes]
    receipt: bytes
    expected_authenticate_response: bytes


def precompute_scp11c_script(
    *,
    sd_public_key: ec.EllipticCurvePublicKey,
    oce_private_key: ec.EllipticCurvePrivateKey,
    oce_certificates: Sequence[bytes],
    commands: Sequence[bytes],
    kvn: int,
    kid: int = 0x15,
    ephemeral_key: ec.EllipticCurvePrivateKey | None = None,
    key_length: int = 16,
    s_mode: int = 8,
) -> Scp11Script:
    """PSO (OCE certificates) + MUTUAL AUTHENTICATE + every command wrapped, for one card.

    Nothing from the card is needed: with SCP11c the card answers with PK.SD and a receipt the
    host can compute, so the script can travel one way over a store-and-forward WAN.
    """
    host = Scp11HostSession(
        Scp11Variant.C,
        sd_public_key,
        kvn=kvn,
        kid=kid,
        oce_private_key=oce_private_key,
        oce_certificates=oce_certificates,
        ephemeral_key=ephemeral_key,
        key_length=key_length,
        s_mode=s_mode,
    )
    apdus = host.perform_security_operation()
    apdus.append(host.authenticate())
    expected = host.expected_response()
    host.process_authenticate_response(expected)
    assert host.receipt is not None
    apdus.extend(host.wrap(command) for command in commands)
    return Scp11Script(apdus, host.receipt, expected)


# --- card side -------------------------------------------------------------------------------


@dataclass
class Scp11CardConfig:
    """The security domain's SCP11 key (SK.SD), its reference, and the OCE trust anchor.

    ``oce_ca_public_key`` is the CA-KLOC key that issued the OCE certificates; it must be set for
    SCP11a/c (the card refuses an OCE certificate it cannot verify).
    """

    sd_private_key: ec.EllipticCurvePrivateKey
    kvn: int = 0x01
    kid: int | None = None
    variants: frozenset[Scp11Variant] = field(
        default_factory=lambda: frozenset({Scp11Variant.A, Scp11Variant.B, Scp11Variant.C})
    )
    oce_ca_public_key: ec.EllipticCurvePublicKey | None = None
    s_mode: int = 8


class Scp11CardSession:
    """A security domain's side of SCP11 sessions."""

    def __init__(
        self,
        config: Scp11CardConfig,
        *,
        new_ephemeral_key: Callable[[ec.EllipticCurve], ec.EllipticCurvePrivateKey] | None = None,
    ) -> None:
        self.config = config
        self.new_ephemeral_key = new_ephemeral_key or ec.generate_private_key
        self.oce_public_key: ec.EllipticCurvePublicKey | None = None
        self._chain: list[Scp11Certificate] = []
        self.sm: SecureMessaging | None = None
        self.receipt: bytes | None = None

    @property
    def curve(self) -> ec.EllipticCurve:
        return self.config.sd_private_key.curve

    def perform_security_operation(self, command: bytes) -> bytes:
        """Receive one OCE certificate; verify it against the CA or the previous certificate."""
        apdu = CommandApdu.parse(command)
        if apdu.ins != INS_PERFORM_SECURITY_OPERATION:
            raise MalformedApdu("not a PERFORM SECURITY OPERATION command", sw=0x6D00)
        if self.config.oce_ca_public_key is None:
            raise ConditionsNotSatisfied("no OCE certificate authority key is installed")
        self.sm = None
        certs = parse_certificates(apdu.data)
        for cert in certs:
            issuer = self._chain[-1].public_key if self._chain else self.config.oce_ca_public_key
            try:
                cert.verify(issuer)
            except WrongData:
                self._chain = []
                raise SecurityStatusNotSatisfied("OCE certificate does not verify") from None
            self._chain.append(cert)
        if not apdu.p2 & 0x80:  # last certificate of the chain
            leaf = self._chain[-1].public_key
            self._chain = []
            if leaf.curve.name != self.curve.name:
                raise WrongData("OCE key is not on the security domain's curve")
            self.oce_public_key = leaf
        return b"\x90\x00"

    def authenticate(self, command: bytes) -> bytes:
        """Answer MUTUAL or INTERNAL AUTHENTICATE: 5F49 ePK.SD || 86 receipt || 9000."""
        self.sm = None
        apdu = CommandApdu.parse(command)
        if apdu.ins not in (INS_MUTUAL_AUTHENTICATE, INS_INTERNAL_AUTHENTICATE):
            raise MalformedApdu("not an SCP11 authenticate command", sw=0x6D00)
        kid = self.config.kid
        request = AuthenticateRequest.parse(apdu.data)
        expected_ins = (
            INS_INTERNAL_AUTHENTICATE
            if request.variant is Scp11Variant.B
            else INS_MUTUAL_AUTHENTICATE
        )
        if apdu.ins != expected_ins:
            raise IncorrectParameters(
                f"SCP11{request.variant.name.lower()} uses INS {expected_ins:02X}"
            )
        if request.variant not in self.config.variants:
            raise IncorrectParameters(f"SCP11{request.variant.name.lower()} is not enabled")
        wanted_kid = request.variant.default_kid if kid is None else kid
        if apdu.p1 not in (0x00, self.config.kvn) or apdu.p2 != wanted_kid:
            raise ReferencedDataNotFound(f"no SCP11 key {apdu.p1:02X}/{apdu.p2:02X}")
        oce_ephemeral = load_point(self.curve, request.ephemeral_point)
        sd_static = self.config.sd_private_key
        if request.variant is Scp11Variant.C:
            card_ephemeral = sd_static
        else:
            card_ephemeral = self.new_ephemeral_key(self.curve)
        if request.variant is Scp11Variant.B:
            oce_static = oce_ephemeral
        else:
            if self.oce_public_key is None:
                raise ConditionsNotSatisfied(
                    "no verified OCE certificate (PERFORM SECURITY OPERATION)"
                )
            oce_static = self.oce_public_key
        sh_see = ecka(card_ephemeral, oce_ephemeral)
        sh_ss = ecka(sd_static, oce_static)
        keys = derive_scp11_keys(sh_see, sh_ss, request.key_length)
        card_tlv = tlv.encode(TAG_EPHEMERAL_KEY, point_bytes(card_ephemeral.public_key()))
        value = receipt(keys.receipt_key, apdu.data, card_tlv)
        self.receipt = value
        self.sm = SecureMessaging(keys.session, SECURITY_LEVEL, self.config.s_mode, value)
        return card_tlv + tlv.encode(TAG_RECEIPT, value) + b"\x90\x00"

    def unwrap_command(self, command: bytes, *, extended: bool = False) -> CommandApdu:
        if self.sm is None or not self.sm.open:
            raise SecurityStatusNotSatisfied("no SCP11 secure channel session is open")
        try:
            return self.sm.card_unwrap(command, extended=extended)
        except GpError:
            if not self.sm.open:
                self.sm = None
            raise

    def wrap_response(self, data: bytes, sw: int = 0x9000) -> bytes:
        if self.sm is None:
            return bytes(data) + sw.to_bytes(2, "big")
        return self.sm.card_wrap(data, sw)

    def process(
        self, command: bytes, handler: Callable[[CommandApdu], tuple[bytes, int]] | None = None
    ) -> bytes:
        """Handle one APDU end to end; errors become their status words, never exceptions."""
        try:
            apdu = CommandApdu.parse(command)
            if apdu.cla & 0x80 and not apdu.cla & 0x04:
                if apdu.ins == INS_PERFORM_SECURITY_OPERATION:
                    return self.perform_security_operation(command)
                if apdu.ins in (INS_MUTUAL_AUTHENTICATE, INS_INTERNAL_AUTHENTICATE):
                    return self.authenticate(command)
            plain = self.unwrap_command(command)
        except GpError as exc:
            return exc.sw_bytes
        if handler is None:
            return self.wrap_response(b"", 0x9000)
        data, sw = handler(plain)
        return self.wrap_response(data, sw)

"""The electricity smart meter (ESME): GBCS checks in the order GBCS requires, then the meter.

Every command is checked in this order, and the first failure drops it with a security-log
entry and no change to the meter:

1. the message frames as a MAC'd GBCS command addressed to this meter (29 fixed bytes only);
2. the Access Control Broker's MAC verifies, with Z = this meter's key-agreement key x the
   ACB's, *before anything else is parsed*;
3. the rest of the message parses;
4. the originator is a remote party this meter trusts, in a role allowed this use case;
5. the originator counter is above that party's anti-replay floor;
6. a critical command carries the owning supplier's signature, which verifies.

Only then does the meter act, raise the floor, and answer: a response MAC'd to the requester
(sensitive values encrypted to it), or, for a critical command, a response signed by the
meter, as the RTDS shows.

The meter's private keys sit in a :class:`~smarthydra.crypto.keystore.Keystore` and are used
only through it (sign, ECDH).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.clock import Clock
from smarthydra.crypto.keystore import Keystore
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.builder import build_general_signing, build_response, sign_message
from smarthydra.gbcs.envelope import (
    SECURITY_CONTROL_MAC,
    CraFlag,
    decode_message,
    parse_mac_header,
)
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.esme_payloads import (
    ACTION_SUCCESS,
    MESSAGE_CODE_ECS17B,
    MESSAGE_CODE_ECS43,
    ImportRegisters,
    action_result_response,
    cosem_date_time,
    open_load_switch_command,
    read_import_registers_command,
    read_import_registers_response,
)

KA_LABEL = "ka"
DS_LABEL = "ds"

# DLMS action-result values used in refusals.
ACTION_READ_WRITE_DENIED = 0x03
ACTION_TYPE_UNMATCHED = 0x0C


class TrustAnchorRole(enum.IntEnum):
    """Remote party roles of the GBCS trust-anchor cells."""

    ROOT = 0
    RECOVERY = 1
    SUPPLIER = 2
    NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER = 4
    TRANSITIONAL_COS = 5
    WAN_PROVIDER = 6


@dataclass(frozen=True)
class RemoteParty:
    """What a device knows of a remote party: its identity and public keys."""

    eui: Eui64
    role: TrustAnchorRole
    key_agreement_key: ec.EllipticCurvePublicKey
    signing_key: ec.EllipticCurvePublicKey | None = None


class SupplyState(enum.Enum):
    ENABLED = "enabled"  # load switch closed
    DISABLED = "disabled"  # load switch open
    ARMED = "armed"  # open, consumer may close it


class DropReason(enum.Enum):
    MALFORMED = "malformed"
    NOT_FOR_THIS_DEVICE = "not addressed to this device"
    NOT_A_COMMAND = "not a command"
    MAC_INVALID = "ACB MAC does not verify"
    UNKNOWN_ORIGINATOR = "originator is not a trusted remote party"
    REPLAY = "originator counter not above the anti-replay floor"
    SIGNATURE_MISSING = "critical command without a signature"
    SIGNATURE_INVALID = "signature does not verify with the owning supplier's key"


@dataclass(frozen=True)
class SecurityEvent:
    at: datetime
    reason: DropReason
    originator: bytes | None
    counter: int | None
    detail: str = ""


@dataclass
class MeterRegisters:
    active_import_wh: int = 0
    reactive_import_varh: int = 0


# Which trust-anchor roles may send each use case (GBCS remote party roles).
_ALLOWED_ROLES: dict[int, frozenset[TrustAnchorRole]] = {
    MESSAGE_CODE_ECS17B: frozenset({TrustAnchorRole.SUPPLIER, TrustAnchorRole.NETWORK_OPERATOR}),
    MESSAGE_CODE_ECS43: frozenset({TrustAnchorRole.SUPPLIER}),
}
_CRITICAL = frozenset({MESSAGE_CODE_ECS43})


class ElectricityMeter:
    """An ESME with its GBCS keys in ``keystore`` (labels ``ka`` and ``ds``)."""

    def __init__(
        self,
        eui: Eui64,
        keystore: Keystore,
        clock: Clock,
        *,
        acb: RemoteParty,
        remote_parties: list[RemoteParty],
        on_security_event: Callable[[SecurityEvent], None] | None = None,
    ) -> None:
        self.eui = eui
        self._keystore = keystore
        self._clock = clock
        self._acb = acb
        self._parties: dict[bytes, RemoteParty] = {p.eui.value: p for p in remote_parties}
        self.anti_replay_floor: dict[bytes, int] = {}
        self.registers = MeterRegisters()
        self.supply = SupplyState.ENABLED
        self.security_log: list[SecurityEvent] = []
        self.commands_executed = 0
        self._on_security_event = on_security_event

    # --- public keys, for the device certificates and the inventory -------------------------

    @property
    def key_agreement_key(self) -> ec.EllipticCurvePublicKey:
        return self._keystore.public_key(KA_LABEL)

    @property
    def signing_key(self) -> ec.EllipticCurvePublicKey:
        return self._keystore.public_key(DS_LABEL)

    def trust(self, party: RemoteParty) -> None:
        """Install or replace a trust anchor (the CS02 updates will drive this)."""
        for eui, existing in list(self._parties.items()):
            if existing.role is party.role:
                del self._parties[eui]
        self._parties[party.eui.value] = party

    # --- consumption -----------------------------------------------------------------------

    def consume(self, active_wh: int, reactive_varh: int = 0) -> None:
        """Energy flows only while the load switch is closed."""
        if self.supply is SupplyState.ENABLED:
            self.registers.active_import_wh += active_wh
            self.registers.reactive_import_varh += reactive_varh

    # --- GBCS ------------------------------------------------------------------------------

    def _drop(
        self, reason: DropReason, originator: bytes | None, counter: int | None, detail: str = ""
    ) -> None:
        event = SecurityEvent(self._clock.now(), reason, originator, counter, detail)
        self.security_log.append(event)
        if self._on_security_event is not None:
            self._on_security_event(event)

    def receive(self, wire: bytes) -> bytes | None:
        """Process one GBCS message from the HAN; return the response bytes, or None if dropped."""
        try:
            header = parse_mac_header(wire)
        except GbcsError as exc:
            self._drop(DropReason.MALFORMED, None, None, str(exc))
            return None
        if header.security_control != SECURITY_CONTROL_MAC or header.invocation_counter != bytes(4):
            # GBCS fixes these bytes; they are outside the MAC, so any other value is refused.
            self._drop(
                DropReason.MALFORMED,
                header.originator,
                header.originator_counter,
                "security header",
            )
            return None
        if header.recipient != self.eui.value:
            self._drop(DropReason.NOT_FOR_THIS_DEVICE, header.originator, header.originator_counter)
            return None
        if header.cra_flag is not CraFlag.COMMAND:
            self._drop(DropReason.NOT_A_COMMAND, header.originator, header.originator_counter)
            return None
        z = self._keystore.derive_shared_secret(KA_LABEL, self._acb.key_agreement_key)
        if not security.verify_mac(security.message_mac_key(z, header), header):
            self._drop(DropReason.MAC_INVALID, header.originator, header.originator_counter)
            return None
        # Only a message the ACB authorised for this meter gets this far.
        try:
            message = decode_message(wire)
        except GbcsError as exc:
            self._drop(DropReason.MALFORMED, header.originator, header.originator_counter, str(exc))
            return None
        originator = message.originator
        counter = message.originator_counter
        party = self._parties.get(originator)
        if party is None:
            self._drop(DropReason.UNKNOWN_ORIGINATOR, originator, counter)
            return None
        floor = self.anti_replay_floor.get(originator, -1)
        if counter <= floor:
            self._drop(DropReason.REPLAY, originator, counter, f"floor is {floor}")
            return None
        code = message.message_code
        if code in _CRITICAL:
            if not message.general_signing.is_signed:
                self._drop(DropReason.SIGNATURE_MISSING, originator, counter)
                return None
            if party.signing_key is None or not security.verify_signature(
                message, party.signing_key
            ):
                self._drop(DropReason.SIGNATURE_INVALID, originator, counter)
                return None
        # Authentic and fresh: raise the floor before acting, so a crash cannot replay it.
        self.anti_replay_floor[originator] = counter
        allowed = _ALLOWED_ROLES.get(code)
        if allowed is None or party.role not in allowed:
            return self._respond(
                party, counter, code, action_result_response(counter, ACTION_READ_WRITE_DENIED)
            )
        if code == MESSAGE_CODE_ECS17B:
            return self._read_import_registers(party, counter, message.payload)
        return self._open_load_switch(party, counter, message.payload)

    def _respond(self, party: RemoteParty, counter: int, code: int, payload: bytes) -> bytes:
        z = self._keystore.derive_shared_secret(KA_LABEL, party.key_agreement_key)
        return build_response(
            device=self.eui.value,
            recipient=party.eui.value,
            counter=counter,
            message_code=code,
            payload=payload,
            z=z,
            date_time=cosem_date_time(self._clock.now()),
        ).wire()

    def _read_import_registers(self, party: RemoteParty, counter: int, payload: bytes) -> bytes:
        expected = read_import_registers_command(counter, party.eui.value, self.eui.value)
        if payload != expected:
            return self._respond(
                party,
                counter,
                MESSAGE_CODE_ECS17B,
                action_result_response(counter, ACTION_TYPE_UNMATCHED),
            )
        values = ImportRegisters(
            self.registers.active_import_wh & 0xFFFFFFFF,
            self.registers.reactive_import_varh & 0xFFFFFFFF,
        )
        z = self._keystore.derive_shared_secret(KA_LABEL, party.key_agreement_key)
        key = security.encryption_key(z, self.eui.value, counter, party.eui.value)
        block = security.seal_sensitive(key, self.eui.value, values.to_plaintext())
        self.commands_executed += 1
        return self._respond(
            party,
            counter,
            MESSAGE_CODE_ECS17B,
            read_import_registers_response(counter, self.eui.value, party.eui.value, block),
        )

    def _open_load_switch(self, party: RemoteParty, counter: int, payload: bytes) -> bytes:
        if payload != open_load_switch_command(counter):
            result = ACTION_TYPE_UNMATCHED
        else:
            self.supply = SupplyState.DISABLED
            self.commands_executed += 1
            result = ACTION_SUCCESS
        # A critical command's response is signed by the meter (not MAC'd), as in the RTDS.
        response = build_general_signing(
            cra_flag=CraFlag.RESPONSE,
            originator=self.eui.value,
            recipient=party.eui.value,
            counter=counter,
            message_code=MESSAGE_CODE_ECS43,
            payload=action_result_response(counter, result),
        )
        return sign_message(response, keystore=self._keystore, label=DS_LABEL).wire()

    # --- state snapshot, for tests and reports ---------------------------------------------

    def snapshot(self) -> tuple[object, ...]:
        return (
            self.registers.active_import_wh,
            self.registers.reactive_import_varh,
            self.supply,
            tuple(sorted(self.anti_replay_floor.items())),
            self.commands_executed,
        )

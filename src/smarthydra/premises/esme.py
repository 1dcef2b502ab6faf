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

What the meter does is its model's (:mod:`.esme_model`): every ESME use case of
:mod:`.usecases` is served by the model's COSEM objects (:mod:`.protected` for protected
reads, :mod:`.der_cases` for join, unjoin and firmware).

The meter's private keys sit in a :class:`~smarthydra.crypto.keystore.Keystore` and are used
only through it (sign, ECDH): software, an HSM, or the meter's own secure element
(:mod:`.meter_se`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.clock import Clock
from smarthydra.crypto.keystore import Keystore
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.axdr import Data, DataType, long_unsigned, octet_string, structure
from smarthydra.gbcs.builder import (
    build_alert,
    build_general_signing,
    build_response,
    sign_message,
)
from smarthydra.gbcs.envelope import (
    SECURITY_CONTROL_MAC,
    CraFlag,
    GbcsMessage,
    decode_message,
    parse_mac_header,
)
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.esme_payloads import (
    MESSAGE_CODE_ECS17B,
    MESSAGE_CODE_ECS43,
    action_result_response,
    cosem_date_time,
)
from smarthydra.gbcs.utrn import (
    UtrnCounterCache,
    UtrnFormatError,
    UtrnNoKey,
    UtrnTooOld,
    verify_utrn,
)
from smarthydra.gbcs.xdlms import DataNotification
from smarthydra.pki.credentials import CellId, CellKeyUsage, CellRole, CellUsage
from smarthydra.premises import der_cases, protected
from smarthydra.premises.esme_model import EsmeModel, MeterRegisters, SupplyState, UtrnVerifier
from smarthydra.premises.usecases import Role, Target, use_case

if TYPE_CHECKING:
    from smarthydra.premises.anchors import DeviceTrustAnchors

KA_LABEL = "ka"
DS_LABEL = "ds"
ALERT_MESSAGE_CODE = 0x0023  # the GBCS device alert (DLMS data-notification) message code

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
    # a supplier's prepayment top-up key (its own KA certificate), for UTRN MACs
    prepayment_key: ec.EllipticCurvePublicKey | None = None


SUPPLIER_TOP_UP_CELL = CellId(
    CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP
)


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


__all__ = ["MESSAGE_CODE_ECS17B", "MESSAGE_CODE_ECS43", "MeterRegisters", "SupplyState"]


def _allowed(code: int, role: TrustAnchorRole) -> bool:
    """The use cases an ESME serves, and the remote-party roles that may send each."""
    spec = use_case(code)
    return spec is not None and spec.target is Target.ESME and Role(role) in spec.roles


def _critical(code: int) -> bool:
    spec = use_case(code)
    return spec is not None and spec.critical



def admit_acb_maced_command(
    wire: bytes,
    recipient: Eui64,
    keystore: Keystore,
    acb_key_agreement_key: ec.EllipticCurvePublicKey,
    drop: Callable[[DropReason, bytes | None, int | None, str], None],
) -> GbcsMessage | None:
    """The gate every HAN device with GBCS keys runs first: the fixed security header, this
    device as recipient, a command, and the ACB's MAC checked before anything is parsed.
    Returns the decoded message, or None after ``drop`` has logged why."""
    try:
        header = parse_mac_header(wire)
    except GbcsError as exc:
        drop(DropReason.MALFORMED, None, None, str(exc))
        return None
    originator, counter = header.originator, header.originator_counter
    if header.security_control != SECURITY_CONTROL_MAC or header.invocation_counter != bytes(4):
        # GBCS fixes these bytes; they are outside the MAC, so any other value is refused.
        drop(DropReason.MALFORMED, originator, counter, "security header")
        return None
    if header.recipient != recipient.value:
        drop(DropReason.NOT_FOR_THIS_DEVICE, originator, counter, "")
        return None
    if header.cra_flag is not CraFlag.COMMAND:
        drop(DropReason.NOT_A_COMMAND, originator, counter, "")
        return None
    z = keystore.derive_shared_secret(KA_LABEL, acb_key_agreement_key)
    if not security.verify_mac(security.message_mac_key(z, header), header):
        drop(DropReason.MAC_INVALID, originator, counter, "")
        return None
    # Only a message the ACB authorised for this device gets this far.
    try:
        return decode_message(wire)
    except GbcsError as exc:
        drop(DropReason.MALFORMED, originator, counter, str(exc))
        return None


def admit_from_party(
    message: GbcsMessage,
    party: RemoteParty | None,
    critical: bool,
    anti_replay_floor: dict[bytes, int],
    drop: Callable[[DropReason, bytes | None, int | None, str], None],
) -> bool:
    """The checks after the ACB's MAC, shared by every HAN device with GBCS keys: a trusted
    originator (``party``), a counter above its anti-replay floor, and for a critical command
    the party's signature. True once the floor is raised (before acting, so a crash cannot
    replay the command); False after ``drop`` has logged why."""
    originator, counter = message.originator, message.originator_counter
    if party is None:
        drop(DropReason.UNKNOWN_ORIGINATOR, originator, counter, "")
        return False
    floor = anti_replay_floor.get(originator, -1)
    if counter <= floor:
        drop(DropReason.REPLAY, originator, counter, f"floor is {floor}")
        return False
    if critical:
        if not message.general_signing.is_signed:
            drop(DropReason.SIGNATURE_MISSING, originator, counter, "")
            return False
        if party.signing_key is None or not security.verify_signature(message, party.signing_key):
            drop(DropReason.SIGNATURE_INVALID, originator, counter, "")
            return False
    anti_replay_floor[originator] = counter
    return True


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
        model: EsmeModel | None = None,
        utrn_verifier: UtrnVerifier | None = None,
    ) -> None:
        self.eui = eui
        self._keystore = keystore
        self._clock = clock
        self._acb = acb
        self._parties: dict[bytes, RemoteParty] = {p.eui.value: p for p in remote_parties}
        self.anti_replay_floor: dict[bytes, int] = {}
        self.model = model or EsmeModel(clock, utrn_verifier=utrn_verifier or self._verify_utrn)
        self.joined = der_cases.JoinedDevices()
        self.firmware = der_cases.DeviceFirmware()
        # ECS52 reads the running firmware version (0-0:0.2.1.255, the active firmware id).
        self.model.server.attribute(
            1, "0-0:0.2.1.255", 2,
            lambda _s, _d: Data(DataType.OCTET_STRING, self.firmware.version))
        self.security_log: list[SecurityEvent] = []
        self.commands_executed = 0
        self._alert_counter = 0
        self._on_security_event = on_security_event
        # Trust-anchor cells and CS02b processing (premises.anchors), once bound to this meter.
        self.anchors: DeviceTrustAnchors | None = None

    # --- public keys, for the device certificates and the inventory -------------------------

    @property
    def key_agreement_key(self) -> ec.EllipticCurvePublicKey:
        return self._keystore.public_key(KA_LABEL)

    @property
    def signing_key(self) -> ec.EllipticCurvePublicKey:
        return self._keystore.public_key(DS_LABEL)

    def trust(self, party: RemoteParty) -> None:
        """Install or replace a trust anchor (the CS02 updates will drive this)."""
        if party.role is TrustAnchorRole.ACCESS_CONTROL_BROKER:
            self._acb = party  # the ACB MACs commands; it never originates them
            return
        for eui, existing in list(self._parties.items()):
            if existing.role is party.role:
                del self._parties[eui]
        self._parties[party.eui.value] = party

    @property
    def utrn_counters(self) -> UtrnCounterCache:
        """The UTRN anti-replay cache (kept with the credit, see ``EsmeModel.redeem_utrn``)."""
        return self.model.credit.utrn_counters

    def prepayment_anchor(self) -> tuple[bytes, ec.EllipticCurvePublicKey, int]:
        """(supplier EUI-64, its prepayment top-up key, top-up floor) as this meter holds them:
        the trust-anchor cell once anchors are bound (so CS02b replaces it), else the
        supplier's remote-party record."""
        if self.anchors is not None:
            cell = self.anchors.cell(SUPPLIER_TOP_UP_CELL)
            if cell is not None:
                floor = self.anchors.top_up_floors.get(int(CellRole.SUPPLIER), -1)
                return cell.subject, cell.public_key, floor
        supplier = next(
            (p for p in self._parties.values() if p.role is TrustAnchorRole.SUPPLIER), None
        )
        if supplier is None or supplier.prepayment_key is None:
            raise UtrnNoKey("this meter holds no supplier prepayment top-up key")
        return supplier.eui.value, supplier.prepayment_key, -1

    def _verify_utrn(self, token: bytes, _now: datetime) -> tuple[int, int]:
        """CS01a / PECS01: the UTRN's MAC with Z = this meter's KA key x the supplier's
        prepayment top-up key, and its counter above the top-up floor; (counter, credit in
        1e-5 GBP). The model then checks the counter cache and credits (one write)."""
        supplier, key, floor = self.prepayment_anchor()
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            raise UtrnFormatError("a UTRN is ASCII digits") from None
        z = self._keystore.derive_shared_secret(KA_LABEL, key)
        ptut = verify_utrn(text, z, supplier, self.eui.value)
        if ptut.counter <= floor:
            raise UtrnTooOld(f"UTRN counter {ptut.counter} is at or below the top-up floor")
        return ptut.counter, ptut.pence * 1000

    # --- the meter's state (kept by the model) ----------------------------------------------

    @property
    def registers(self) -> MeterRegisters:
        return self.model.registers

    @property
    def supply(self) -> SupplyState:
        return self.model.supply

    @supply.setter
    def supply(self, state: SupplyState) -> None:
        self.model.supply = state

    # --- consumption -----------------------------------------------------------------------

    def consume(self, active_wh: int, reactive_varh: int = 0) -> None:
        """Energy flows only while the load switch is closed."""
        self.model.consume(active_wh, reactive_varh)

    # --- GBCS ------------------------------------------------------------------------------

    def _drop(
        self, reason: DropReason, originator: bytes | None, counter: int | None, detail: str = ""
    ) -> None:
        event = SecurityEvent(self._clock.now(), reason, originator, counter, detail)
        self.security_log.append(event)
        self.model.log_security_event(reason.name)  # what ECS35b reads back
        if self._on_security_event is not None:
            self._on_security_event(event)

    def receive(self, wire: bytes) -> bytes | None:
        """Process one GBCS message from the HAN; return the response bytes, or None if dropped."""
        if self.anchors is not None and wire[:1] == b"\xdf":
            return self.anchors.process_signed_only(wire, self.eui.value)
        message = admit_acb_maced_command(
            wire, self.eui, self._keystore, self._acb.key_agreement_key, self._drop
        )
        if message is None:
            return None
        if self.anchors is not None and self.anchors.handles(message.message_code):
            return self.anchors.process(message.general_signing, maced=True)
        originator = message.originator
        counter = message.originator_counter
        party = self._parties.get(originator)
        code = message.message_code
        if not admit_from_party(
            message, party, _critical(code), self.anti_replay_floor, self._drop
        ):
            return None
        assert party is not None  # admitted: a trusted party sent it
        if not self._serves(code, party.role):
            return self._respond(
                party, counter, code, action_result_response(counter, ACTION_READ_WRITE_DENIED)
            )
        return self._execute(party, counter, code, message.payload)

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

    def _serves(self, code: int, role: TrustAnchorRole) -> bool:
        return _allowed(code, role)

    def _execute(self, party: RemoteParty, counter: int, code: int, payload: bytes) -> bytes:
        """Serve the xDLMS request on the model; answer as GBCS says for this use case."""

        def seal(plaintext: bytes) -> bytes:
            # Sensitive data (protected reads) is encrypted to the requester (KDF from Z).
            z = self._keystore.derive_shared_secret(KA_LABEL, party.key_agreement_key)
            key = security.encryption_key(z, self.eui.value, counter, party.eui.value)
            return security.seal_sensitive(key, self.eui.value, plaintext)

        spec = use_case(code)
        answer: der_cases.DerAnswer | protected.Answer
        if spec is not None and spec.name in der_cases.METER_CASES:  # join, unjoin, firmware
            answer = der_cases.serve_meter(spec.name, payload, self.joined, self.firmware)
        else:
            answer = protected.serve(self.model, payload, self.eui.value, seal)
        if answer.executed:
            self.commands_executed += 1
        if not _critical(code):
            return self._respond(party, counter, code, answer.payload)
        # A critical command's response is signed by the meter (not MAC'd), as in the RTDS.
        response = build_general_signing(
            cra_flag=CraFlag.RESPONSE,
            originator=self.eui.value,
            recipient=party.eui.value,
            counter=counter,
            message_code=code,
            payload=answer.payload,
        )
        return sign_message(response, keystore=self._keystore, label=DS_LABEL).wire()

    # --- alerts -----------------------------------------------------------------------------

    def drain_alerts(self) -> list[bytes]:
        """GBCS alerts for the events the model raised, MAC'd to the supplier, oldest first."""
        supplier = next(
            (p for p in self._parties.values() if p.role is TrustAnchorRole.SUPPLIER), None
        )
        # Future-dated CS02b commands whose time has come: their 8F66/8F67 alerts first.
        out: list[bytes] = [] if self.anchors is None else self.anchors.execute_due()
        while self.model.outbox and supplier is not None:
            code, at = self.model.outbox.pop(0)
            self._alert_counter += 1
            body = structure(long_unsigned(code), octet_string(cosem_date_time(at)))
            payload = DataNotification(0x20000000 | (self._alert_counter & 0xFFFFFF), None,
                                       body).encode()
            z = self._keystore.derive_shared_secret(KA_LABEL, supplier.key_agreement_key)
            out.append(build_alert(device=self.eui.value, recipient=supplier.eui.value,
                                   counter=self._alert_counter, message_code=ALERT_MESSAGE_CODE,
                                   payload=payload, z=z).wire())
        return out

    # --- state snapshot, for tests and reports ---------------------------------------------

    def snapshot(self) -> tuple[object, ...]:
        return (
            self.registers.active_import_wh,
            self.registers.reactive_import_varh,
            self.supply,
            tuple(sorted(self.anti_replay_floor.items())),
            self.commands_executed,
        )

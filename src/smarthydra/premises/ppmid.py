"""A prepayment interface device (PPMID) that takes GBCS commands from the WAN via the hub.

The hub routes a GBCS command addressed to the PPMID exactly as it routes one for the
electricity meter: only if the PPMID is in the CHF device log, sealed with the PPMID's HAN
link key. The PPMID then makes the same GBCS checks a meter makes, in the same order (see
:mod:`.esme`): framing, the ACB's MAC before anything else is parsed, a trusted originator in
a role allowed the use case, the anti-replay floor, and, for a critical command, the owning
supplier's signature. It serves:

- CS08 (SRV 11.2, read PPMID firmware version): the DCC sends it in its own name (the DCC
  user as supplementary remote party, as the RTDS shows), so the PPMID answers the ACB:
  ``SEQUENCE { OCTET STRING version, INTEGER result }``, MAC'd;
- CS06 (SRV 11.3, activate firmware the hub distributed, CS05): the meters' DER answer,
  signed by the PPMID because CS06 is critical.

Its keys sit in a :class:`~smarthydra.crypto.keystore.Keystore` (labels ``ka`` and ``ds``).
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.clock import Clock
from smarthydra.crypto.keystore import Keystore
from smarthydra.eui import Eui64
from smarthydra.gbcs.builder import build_general_signing, build_response, sign_message
from smarthydra.gbcs.der import Universal, decode_der
from smarthydra.gbcs.envelope import CraFlag
from smarthydra.gbcs.errors import GbcsDecodeError
from smarthydra.premises import der_cases
from smarthydra.premises.der_cases import (
    RESULT_FAILURE,
    RESULT_SUCCESS,
    der_integer,
    der_octets,
    der_sequence,
)
from smarthydra.premises.esme import (
    DS_LABEL,
    KA_LABEL,
    DropReason,
    RemoteParty,
    SecurityEvent,
    admit_acb_maced_command,
    admit_from_party,
)
from smarthydra.premises.inhome import PrepaymentInterface
from smarthydra.premises.usecases import Role, Target, UseCase, use_case


def firmware_version_answer(version: bytes, result: int = RESULT_SUCCESS) -> bytes:
    """The CS08 response payload: the running firmware version and a result code."""
    return der_sequence(der_octets(version), der_integer(result)).encode()


def _read_firmware_request(payload: bytes) -> bool:
    """CS08's command payload is a DER NULL (``05 00``): it asks for nothing more."""
    try:
        return decode_der(payload).is_universal(Universal.NULL)
    except GbcsDecodeError:
        return False


class Ppmid(PrepaymentInterface):
    """A PPMID with GBCS keys: the consumer's prepayment device on the HAN (emergency credit,
    top-ups, balance) that also answers the GBCS use cases addressed to it."""

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
        super().__init__(eui)
        self._keystore = keystore
        self._clock = clock
        self._acb = acb
        self._parties: dict[bytes, RemoteParty] = {p.eui.value: p for p in remote_parties}
        self._on_security_event = on_security_event
        self.anti_replay_floor: dict[bytes, int] = {}
        self.firmware = der_cases.DeviceFirmware()
        self.security_log: list[SecurityEvent] = []
        self.commands_executed = 0

    @property
    def key_agreement_key(self) -> ec.EllipticCurvePublicKey:
        return self._keystore.public_key(KA_LABEL)

    @property
    def signing_key(self) -> ec.EllipticCurvePublicKey:
        return self._keystore.public_key(DS_LABEL)

    def _drop(self, reason: DropReason, originator: bytes | None, counter: int | None,
              detail: str = "") -> None:
        event = SecurityEvent(self._clock.now(), reason, originator, counter, detail)
        self.security_log.append(event)
        if self._on_security_event is not None:
            self._on_security_event(event)

    def receive(self, wire: bytes) -> bytes | None:
        """One GBCS command from the hub (already out of the HAN link security); the
        response bytes, or None when the command is dropped (and logged)."""
        message = admit_acb_maced_command(
            wire, self.eui, self._keystore, self._acb.key_agreement_key, self._drop
        )
        if message is None:
            return None
        originator, counter = message.originator, message.originator_counter
        party = self._parties.get(originator)
        if party is None and originator == self._acb.eui.value:
            party = self._acb  # CS08 is sent by the DCC in its own name (the user rides along)
        spec = self._served(message.message_code)
        critical = spec is not None and spec.critical
        if not admit_from_party(message, party, critical, self.anti_replay_floor, self._drop):
            return None
        assert party is not None  # admitted: a trusted party sent it
        if spec is None or Role(party.role) not in spec.roles:
            # Not a PPMID use case, or not for this party: a failure result, MAC'd, so the
            # requester learns it was refused rather than waiting for a timeout.
            return self._respond(party, counter, message.message_code,
                                 der_integer(RESULT_FAILURE).encode())
        return self._execute(spec, party, counter, message.payload)

    @staticmethod
    def _served(code: int) -> UseCase | None:
        spec = use_case(code)
        if spec is None:
            return None
        if spec.target is Target.PPMID or spec.name == "CS06":
            return spec
        return None

    def _execute(self, spec: UseCase, party: RemoteParty, counter: int, payload: bytes) -> bytes:
        if spec.name == "CS08":
            if not _read_firmware_request(payload):
                answer = firmware_version_answer(bytes(4), RESULT_FAILURE)
            else:
                answer = firmware_version_answer(self.firmware.version)
                self.commands_executed += 1
            return self._respond(party, counter, spec.code, answer)
        outcome = der_cases.serve_meter(spec.name, payload, der_cases.JoinedDevices(),
                                        self.firmware)
        if outcome.executed:
            self.commands_executed += 1
        # A critical command's response is signed by the device, as the RTDS shows.
        response = build_general_signing(
            cra_flag=CraFlag.RESPONSE, originator=self.eui.value, recipient=party.eui.value,
            counter=counter, message_code=spec.code, payload=outcome.payload,
        )
        return sign_message(response, keystore=self._keystore, label=DS_LABEL).wire()

    def _respond(self, party: RemoteParty, counter: int, code: int, payload: bytes) -> bytes:
        z = self._keystore.derive_shared_secret(KA_LABEL, party.key_agreement_key)
        return build_response(device=self.eui.value, recipient=party.eui.value, counter=counter,
                              message_code=code, payload=payload, z=z).wire()

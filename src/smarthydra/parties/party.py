"""DCC users: suppliers, network operators and others, each with keys in its own keystore.

A party builds DUIS service requests, signs pre-commands for critical ones with its
digital-signing key, and checks what comes back: the device's MAC (Z = its own
key-agreement key x the device's), the device's signature on responses to critical
commands, and the decryption of sensitive values, which only it can read.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto.keystore import Keystore
from smarthydra.dcc.service import DataCommsCompany, DccResponse
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import (
    CommandVariant,
    RequestId,
    ServiceRequest,
    SignedPreCommand,
)
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.builder import sign_precommand
from smarthydra.gbcs.envelope import CraFlag, GbcsMessage, decode_message
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.esme_payloads import ACTION_SUCCESS, ImportRegisters, action_result
from smarthydra.gbcs.sensitive import find_protected_blocks

DS_LABEL = "ds"
KA_LABEL = "ka"


@dataclass(frozen=True)
class DeviceKeys:
    """A device's public keys as its SMKI device certificates give them."""

    key_agreement_key: ec.EllipticCurvePublicKey
    signing_key: ec.EllipticCurvePublicKey


DeviceDirectory = Callable[[Eui64], DeviceKeys | None]


class Outcome(enum.Enum):
    DONE = "done"
    REFUSED = "refused"  # the DCC answered with an error code
    QUARANTINED = "quarantined"
    NO_RESPONSE = "no response"
    BAD_RESPONSE = "bad response"  # the device's answer failed our checks
    DEVICE_REFUSED = "device refused"  # the device answered with an error result


@dataclass(frozen=True)
class RequestResult:
    srv: str
    target: Eui64
    outcome: Outcome
    code: ResponseCode
    detail: str = ""
    registers: ImportRegisters | None = None
    dcc_response: DccResponse | None = None


@dataclass
class Party:
    name: str
    eui: Eui64
    role: str
    keystore: Keystore
    devices: DeviceDirectory
    counter: int = 1000
    results: list[RequestResult] = field(default_factory=list)

    @property
    def signing_key(self) -> ec.EllipticCurvePublicKey:
        return self.keystore.public_key(DS_LABEL)

    @property
    def key_agreement_key(self) -> ec.EllipticCurvePublicKey:
        return self.keystore.public_key(KA_LABEL)

    def next_request_id(self, target: Eui64) -> RequestId:
        self.counter += 1
        return RequestId(self.eui, target, self.counter)

    def _result(
        self,
        srv: str,
        target: Eui64,
        outcome: Outcome,
        response: DccResponse,
        detail: str = "",
        registers: ImportRegisters | None = None,
    ) -> RequestResult:
        result = RequestResult(srv, target, outcome, response.code, detail, registers, response)
        self.results.append(result)
        return result

    def _from_dcc(self, srv: str, target: Eui64, response: DccResponse) -> RequestResult | None:
        """A result when the DCC did not hand back a device response."""
        if response.dcc_alert is not None:
            return self._result(srv, target, Outcome.QUARANTINED, response, response.detail)
        if not response.ok:
            return self._result(srv, target, Outcome.REFUSED, response, response.detail)
        if response.gbcs is None:
            return self._result(srv, target, Outcome.NO_RESPONSE, response, response.detail)
        return None

    def _check_response(self, wire: bytes, target: Eui64, counter: int) -> GbcsMessage:
        """Decode a device response and verify its MAC or signature; raise GbcsError if bad."""
        keys = self.devices(target)
        if keys is None:
            raise GbcsError(f"no certificates known for device {target}")
        message = decode_message(wire)
        if (
            message.cra_flag is not CraFlag.RESPONSE
            or message.originator != target.value
            or message.recipient != self.eui.value
            or message.originator_counter != counter
        ):
            raise GbcsError("response does not answer this request")
        if message.is_macd:
            z = self.keystore.derive_shared_secret(KA_LABEL, keys.key_agreement_key)
            if not security.verify_mac(security.message_mac_key(z, message), message):
                raise GbcsError("response MAC does not verify")
        elif not message.general_signing.is_signed or not security.verify_signature(
            message, keys.signing_key
        ):
            raise GbcsError("response is neither MAC'd nor validly signed")
        return message

    # --- service requests ---------------------------------------------------------------------

    def read_import_registers(self, dcc: DataCommsCompany, target: Eui64) -> RequestResult:
        """SRV 4.1.1 Read Instantaneous Import Registers (non-critical, CV 1)."""
        srv = "4.1.1"
        rid = self.next_request_id(target)
        response = dcc.submit(
            ServiceRequest(rid, self.eui, self.role, srv, CommandVariant.NON_CRITICAL_TO_DEVICE)
        )
        early = self._from_dcc(srv, target, response)
        if early is not None:
            return early
        assert response.gbcs is not None  # _from_dcc returned None
        try:
            message = self._check_response(response.gbcs, target, rid.counter)
            blocks = find_protected_blocks(message.payload)
            if not blocks:
                result = action_result(message.payload)
                return self._result(
                    srv, target, Outcome.DEVICE_REFUSED, response, f"action result {result}"
                )
            keys = self.devices(target)
            if keys is None:
                raise GbcsError(f"no certificates known for device {target}")
            z = self.keystore.derive_shared_secret(KA_LABEL, keys.key_agreement_key)
            key = security.message_encryption_key(z, message)
            registers = ImportRegisters.from_plaintext(
                security.decrypt_payload(key, message.originator, blocks[0])
            )
        except GbcsError as exc:
            return self._result(srv, target, Outcome.BAD_RESPONSE, response, str(exc))
        return self._result(srv, target, Outcome.DONE, response, registers=registers)

    def disable_supply(self, dcc: DataCommsCompany, target: Eui64) -> RequestResult:
        """SRV 7.2 Disable Supply (critical): CV 4 for the pre-command, sign, CV 5 to send."""
        srv = "7.2"
        rid = self.next_request_id(target)
        transformed = dcc.submit(
            ServiceRequest(rid, self.eui, self.role, srv, CommandVariant.CRITICAL_TRANSFORM)
        )
        if not transformed.ok or transformed.gbcs is None:
            return self._result(srv, target, Outcome.REFUSED, transformed, transformed.detail)
        try:
            signed = sign_precommand(transformed.gbcs, keystore=self.keystore, label=DS_LABEL)
        except GbcsError as exc:
            return self._result(
                srv, target, Outcome.BAD_RESPONSE, transformed, f"pre-command: {exc}"
            )
        response = dcc.submit_signed(
            SignedPreCommand(
                rid,
                self.eui,
                self.role,
                srv,
                CommandVariant.CRITICAL_SIGNED_TO_DEVICE,
                signed.wire(),
            )
        )
        early = self._from_dcc(srv, target, response)
        if early is not None:
            return early
        assert response.gbcs is not None  # _from_dcc returned None
        try:
            message = self._check_response(response.gbcs, target, rid.counter)
            result = action_result(message.payload)
        except GbcsError as exc:
            return self._result(srv, target, Outcome.BAD_RESPONSE, response, str(exc))
        outcome = Outcome.DONE if result == ACTION_SUCCESS else Outcome.DEVICE_REFUSED
        return self._result(srv, target, outcome, response, f"action result {result}")

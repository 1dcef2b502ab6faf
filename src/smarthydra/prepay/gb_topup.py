"""GB prepayment top-up, supplier side: UTRNs vended with the supplier's prepayment top-up key
(in its HSM), sent to the meter by DUIS SRV 2.2 *Top Up Device* (use case CS01a), and the
meter's answer checked.

* :class:`UtrnVendor` makes UTRNs (:mod:`smarthydra.gbcs.utrn`). Its key is the supplier's
  prepayment top-up key - a key-agreement key of its own with its own SMKI organisation
  certificate, distinct from its ordinary KA key - used only through
  :meth:`Keystore.derive_shared_secret` with the meter's KA key (from the meter's SMKI device
  certificate), so it never leaves the keystore (soft or PKCS#11). UTRN counters are Unix
  seconds at vending (the RTDS UTRNs carry such times), strictly increasing per meter.
* :class:`TopUpAgent` sends a UTRN as SRV 2.2 through an injected ``submit`` (the DCC, or
  anything answering like it: sans-I/O) and reads the device's response: its MAC with the
  supplier's ordinary KA key, that it answers this request, and the ACTION result (0: the
  meter credited the UTRN; otherwise refused, with the meter's alert going to the supplier).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.clock import Clock
from smarthydra.crypto.keystore import Keystore, KeystoreError
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.envelope import CraFlag, decode_message
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.utrn import MAX_COUNTER, UtrnError, generate_utrn, value_for_pence
from smarthydra.gbcs.xdlms import AccessResponse, decode_xdlms
from smarthydra.prepay.errors import PrepayError

TOP_UP_LABEL = "pp-ka"  # the prepayment top-up key in the supplier's keystore
KA_LABEL = "ka"  # the supplier's ordinary key-agreement key (response MACs)
SRV_TOP_UP_DEVICE = "2.2"
ACTION_SUCCESS = 0


class TopUpError(PrepayError):
    """A top-up could not be vended (no key, no device certificate, bad amount)."""

    reason = "top-up"


@dataclass(frozen=True)
class VendedUtrn:
    device: bytes
    counter: int
    pence: int
    utrn: str


DeviceKeyDirectory = Callable[[Eui64], ec.EllipticCurvePublicKey | None]


@dataclass
class UtrnVendor:
    """The supplier's UTRN vending: its prepayment top-up key stays in ``keystore``."""

    supplier: Eui64
    keystore: Keystore
    clock: Clock
    device_keys: DeviceKeyDirectory  # a meter's KA key, from its SMKI device certificate
    label: str = TOP_UP_LABEL
    last_counter: dict[bytes, int] = field(default_factory=dict)

    def next_counter(self, device: Eui64) -> int:
        now = int(self.clock.now().timestamp())
        counter = max(now, self.last_counter.get(device.value, -1) + 1)
        if counter > MAX_COUNTER:
            raise TopUpError(f"UTRN counter {counter} no longer fits a 19-digit PTUT")
        return counter

    def vend(self, device: Eui64, pence: int) -> VendedUtrn:
        """A UTRN worth ``pence`` for ``device``; raises :class:`TopUpError`."""
        peer = self.device_keys(device)
        if peer is None:
            raise TopUpError(f"no key-agreement certificate known for meter {device}")
        try:
            value, value_class = value_for_pence(pence)
            counter = self.next_counter(device)
            z = self.keystore.derive_shared_secret(self.label, peer)
            utrn = generate_utrn(z, self.supplier.value, device.value, counter, value, value_class)
        except (UtrnError, KeystoreError) as exc:
            raise TopUpError(str(exc)) from None
        self.last_counter[device.value] = counter
        return VendedUtrn(device.value, counter, pence, utrn)


def top_up_request(request_id: RequestId, role: str, utrn: str) -> ServiceRequest:
    """DUIS SRV 2.2 Top Up Device (non-critical, command variant 1) carrying ``utrn``."""
    return ServiceRequest(
        request_id,
        request_id.originator,
        role,
        SRV_TOP_UP_DEVICE,
        CommandVariant.NON_CRITICAL_TO_DEVICE,
        {"UTRN": utrn},
    )


def top_up_result(wire: bytes, *, z: bytes, request_id: RequestId) -> int:
    """The ACTION result of a CS01a response, once it is shown to be the device's answer to
    this request (MAC with ``z`` = supplier KA x device KA); raises GbcsError otherwise."""
    message = decode_message(wire)
    if (
        message.cra_flag is not CraFlag.RESPONSE
        or message.originator != request_id.target.value
        or message.recipient != request_id.originator.value
        or message.originator_counter != request_id.counter
    ):
        raise GbcsError("the response does not answer this top-up request")
    if not message.is_macd or not security.verify_mac(
        security.message_mac_key(z, message), message
    ):
        raise GbcsError("the response MAC does not verify")
    apdu = decode_xdlms(message.payload)
    if not isinstance(apdu, AccessResponse) or len(apdu.results) != 1:
        raise GbcsError("a CS01a response is one ACTION result")
    return apdu.results[0].result


class DccAnswer(Protocol):
    """What the DCC answers a service request with (``dcc.service.DccResponse``)."""

    @property
    def ok(self) -> bool: ...

    @property
    def gbcs(self) -> bytes | None: ...

    @property
    def detail(self) -> str: ...


class TopUpStatus(enum.Enum):
    ACCEPTED = "accepted"
    REFUSED_BY_METER = "refused by the meter"
    DCC_REFUSED = "refused by the DCC"
    NO_RESPONSE = "no response"
    BAD_RESPONSE = "bad response"


@dataclass(frozen=True)
class TopUpOutcome:
    vended: VendedUtrn
    status: TopUpStatus
    request_id: RequestId
    action_result: int | None = None
    response: bytes | None = None  # the device's GBCS response
    detail: str = ""


@dataclass
class TopUpAgent:
    """A supplier topping up meters through the DCC with UTRNs from its vendor."""

    vendor: UtrnVendor
    role: str
    submit: Callable[[ServiceRequest], DccAnswer]
    next_request_id: Callable[[Eui64], RequestId]
    ka_label: str = KA_LABEL

    def top_up(self, device: Eui64, pence: int) -> TopUpOutcome:
        return self.send(self.vendor.vend(device, pence))

    def send(self, vended: VendedUtrn) -> TopUpOutcome:
        """Send ``vended`` by SRV 2.2 (again, if it was sent before: a fresh request)."""
        device = Eui64(vended.device)
        request_id = self.next_request_id(device)
        answer = self.submit(top_up_request(request_id, self.role, vended.utrn))
        if not answer.ok:
            return TopUpOutcome(vended, TopUpStatus.DCC_REFUSED, request_id, detail=answer.detail)
        if answer.gbcs is None:
            return TopUpOutcome(vended, TopUpStatus.NO_RESPONSE, request_id, detail=answer.detail)
        peer = self.vendor.device_keys(device)
        try:
            if peer is None:
                raise GbcsError(f"no key-agreement certificate known for meter {device}")
            z = self.vendor.keystore.derive_shared_secret(self.ka_label, peer)
            result = top_up_result(answer.gbcs, z=z, request_id=request_id)
        except (GbcsError, KeystoreError) as exc:
            return TopUpOutcome(vended, TopUpStatus.BAD_RESPONSE, request_id,
                                response=answer.gbcs, detail=str(exc))
        status = TopUpStatus.ACCEPTED if result == ACTION_SUCCESS else TopUpStatus.REFUSED_BY_METER
        return TopUpOutcome(vended, status, request_id, result, answer.gbcs)

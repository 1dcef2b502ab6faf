"""The gas proxy function (GPF): the hub's stand-in for the battery-powered gas meter.

The gas meter wakes every half hour and pushes its Metering data over the HAN; the GPF
applet on the hub's secure element keeps that copy with its time. Then:

- a read addressed to the GPF (GCS13a "from the GPF") is answered from the copy, by the GPF,
  with the GPF's own key (the RTDS GPF responses come from the GPF's EUI, the gas meter's own
  answers from the gas meter's); the copy is *reliable* while it is younger than the applet's
  maximum age and *unreliable* after: :attr:`GasProxyFunction.last_reliable` and the hub's log
  say which, and so does the answer, as the RTDS does: in the clock_status byte of the
  Date-Time of the general-signing header (00 a reliable copy on the GPF's clock, 04 a
  reliable copy stamped with the gas meter's own, differing clock, 02 a doubtful one; see
  :data:`~smarthydra.premises.gsme.CLOCK_RELIABLE`), the payloads being alike;
- a critical command for the gas meter is passed through to it over the HAN, always;
- a non-critical command for the gas meter passes through only while the day's read budget
  lasts (the GPF applet's ``ADMIT``); beyond it the command is dropped and logged, so a
  flood of reads cannot drain the gas meter's battery.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.clock import Clock
from smarthydra.crypto.keystore import Keystore, KeyUsage, KeyUsageError
from smarthydra.crypto.primitives import public_key_from_xy, public_key_to_xy
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.builder import build_response
from smarthydra.gbcs.envelope import decode_message, parse_mac_header
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.gbz import (
    CONTROL_ENCRYPTED,
    CONTROL_LAST,
    AttributeRecord,
    EncryptedZcl,
    GbzComponent,
    GbzPayload,
    ReadAttributes,
    ReadAttributesResponse,
    ZclHeader,
    decode_gbz,
    decode_zcl_body,
)
from smarthydra.premises.esme import ElectricityMeter, RemoteParty, TrustAnchorRole
from smarthydra.premises.esme_model import GBCS_EPOCH
from smarthydra.premises.gsme import (
    CLOCK_AGREEMENT,
    CLOCK_DOUBTFUL,
    CLOCK_METER_BASE,
    CLOCK_RELIABLE,
    FC_PROFILE_RESPONSE,
    FC_PROFILE_RESPONSE_NO_DEFAULT,
    METERING,
    STATUS_UNSUPPORTED_ATTRIBUTE,
    GasMeter,
    stamped_date_time,
    zcl_time,
)
from smarthydra.premises.hub import MIRROR_TAG, CommsHub, DeviceKind
from smarthydra.premises.hub_applets import GPF_AID, GpfIns
from smarthydra.premises.usecases import Role, Target, use_case

KA_LABEL = "ka"
GPF_READS = frozenset({"GCS13a", "GCS33"})


class AppletKeystore(Keystore):
    """The GPF's GBCS key, held by the GPF applet: only its public key and ECDH are offered."""

    def __init__(self, hub: CommsHub, aid: bytes) -> None:
        self._hub = hub
        self._aid = aid

    def generate(self, label: str, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        raise KeyUsageError("the applet generates its key at installation")

    def import_private_key(self, label: str, key: ec.EllipticCurvePrivateKey,
                           usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        raise KeyUsageError("private keys do not enter the applet from outside")

    def public_key(self, label: str) -> ec.EllipticCurvePublicKey:
        return public_key_from_xy(self._hub.vt.call(self._aid, GpfIns.PUBLIC_KA))

    def usage(self, label: str) -> KeyUsage:
        return KeyUsage.KEY_AGREEMENT

    def sign(self, label: str, data: bytes) -> bytes:
        raise KeyUsageError("the gas proxy function's key is for key agreement only")

    def derive_shared_secret(self, label: str, peer: ec.EllipticCurvePublicKey) -> bytes:
        return self._hub.vt.call(self._aid, GpfIns.ECDH, public_key_to_xy(peer))

    def destroy(self, label: str) -> None:
        raise KeyUsageError("the applet's key is removed with the applet")

    def labels(self) -> list[str]:
        return [KA_LABEL]


class GasProxyFunction(ElectricityMeter):
    """The GPF as a GBCS device: the same security checks, answers from the gas meter's copy."""

    def __init__(self, eui: Eui64, hub: CommsHub, clock: Clock, *, acb: RemoteParty,
                 remote_parties: list[RemoteParty]) -> None:
        super().__init__(eui, AppletKeystore(hub, GPF_AID), clock, acb=acb,
                         remote_parties=remote_parties)
        self.hub = hub
        self.last_reliable: bool | None = None
        self.last_clock_status: int | None = None

    def _serves(self, code: int, role: TrustAnchorRole) -> bool:
        spec = use_case(code)
        return (spec is not None and spec.target is Target.GSME and spec.name in GPF_READS
                and Role(role) in spec.roles)

    def _execute(self, party: RemoteParty, counter: int, code: int, payload: bytes) -> bytes:
        now = zcl_time(self._clock.now())
        copy = self.hub.vt.call(GPF_AID, GpfIns.READ, now.to_bytes(4, "big"))
        reliable, taken_at, kept = bool(copy[0]), int.from_bytes(copy[1:5], "big"), copy[5:]
        # What the GPF kept: the clock base of the copy (1), the gas meter's time (4), records.
        base = kept[0] if kept else CLOCK_DOUBTFUL
        meter_time = int.from_bytes(kept[1:5], "big") if len(kept) >= 5 else taken_at
        snapshot = kept[5:]
        self.last_reliable = reliable
        status = base if reliable else CLOCK_DOUBTFUL
        stamp = meter_time if base == CLOCK_METER_BASE else taken_at
        self.last_clock_status = status
        self.hub._note(f"GPF answered from its copy ({'reliable' if reliable else 'unreliable'})",
                       self.eui.value)
        records: dict[int, AttributeRecord] = {}
        if snapshot:
            mirror = decode_zcl_body(0x08, 0x01, snapshot)
            assert isinstance(mirror, ReadAttributesResponse)
            records = {r.attribute_id: r for r in mirror.records}
        try:
            request = decode_gbz(payload)
        except GbcsError:
            request = GbzPayload(0)
        z = self._keystore.derive_shared_secret(KA_LABEL, party.key_agreement_key)
        key = security.encryption_key(z, self.eui.value, counter, party.eui.value)
        answers: list[GbzComponent] = []
        for component in request.components:
            body = component.body
            if component.cluster_id != METERING or not isinstance(body, ReadAttributes):
                continue
            response = ReadAttributesResponse(tuple(
                records.get(a, AttributeRecord(a, STATUS_UNSUPPORTED_ATTRIBUTE))
                for a in body.attribute_ids))
            seq = component.zcl.sequence
            if 0x0000 in body.attribute_ids:
                block = security.seal_sensitive(key, self.eui.value, response.encode())
                answers.append(GbzComponent(CONTROL_ENCRYPTED, METERING,
                                            ZclHeader(FC_PROFILE_RESPONSE_NO_DEFAULT, seq, 0x01),
                                            EncryptedZcl(0, 0, block[5:])))
            else:
                answers.append(GbzComponent(0, METERING, ZclHeader(FC_PROFILE_RESPONSE, seq, 0x01),
                                            response))
        if answers:
            last = answers[-1]
            answers[-1] = GbzComponent(last.control | CONTROL_LAST, last.cluster_id, last.zcl,
                                       last.body)
            self.commands_executed += 1
        answer = GbzPayload(len(answers), tuple(answers)).encode()
        return build_response(
            device=self.eui.value, recipient=party.eui.value, counter=counter, message_code=code,
            payload=answer, z=z,
            date_time=stamped_date_time(GBCS_EPOCH + dt.timedelta(seconds=stamp), status),
        ).wire()


@dataclass
class GasProxy:
    """The hub's router for gas traffic (what :class:`CommsHub` hands gas messages to)."""

    hub: CommsHub
    gas_meter: Eui64
    function: GasProxyFunction
    passed_through: int = 0
    refused_reads: int = 0
    answered_from_copy: int = 0
    log: list[str] = field(default_factory=list)

    def receive_from_wan(self, message: bytes) -> bytes | None:
        try:
            header = parse_mac_header(message)
        except GbcsError:
            return None
        if header.recipient == self.function.eui.value:
            self.answered_from_copy += 1
            return self.function.receive(message)
        try:
            code = decode_message(message).message_code
        except GbcsError:
            return None
        spec = use_case(code)
        if spec is None or not spec.critical:
            now = zcl_time(self.hub.clock.now()).to_bytes(4, "big")
            if self.hub.vt.call(GPF_AID, GpfIns.ADMIT, now) != b"\x01":
                self.refused_reads += 1
                self.hub._note("GPF: read refused to protect the gas meter battery",
                               self.gas_meter.value)
                return None
        self.passed_through += 1
        return self.hub.han_exchange(self.gas_meter, message)

    def accept_mirror(self, frame: bytes, taken_at: dt.datetime) -> None:
        """The gas meter's push: its own time (4) and its Metering records. The copy is kept
        with the hub's time of arrival; when the meter's time disagrees with the hub's, the
        meter's time is kept too, and answers carry it flagged as another clock base."""
        if len(frame) < 4:
            self.log.append("dropped gas push: no meter time")
            return
        meter_time = int.from_bytes(frame[:4], "big")
        arrived = zcl_time(taken_at)
        agrees = abs(meter_time - arrived) <= CLOCK_AGREEMENT.total_seconds()
        base = CLOCK_RELIABLE if agrees else CLOCK_METER_BASE
        kept = bytes([base]) + frame[:4] + frame[4:]
        self.hub.vt.call(GPF_AID, GpfIns.UPDATE, arrived.to_bytes(4, "big") + kept)

    def configure(self, max_age_s: int, reads_per_day: int) -> None:
        self.hub.vt.call(GPF_AID, GpfIns.CONFIGURE,
                         max_age_s.to_bytes(4, "big") + reads_per_day.to_bytes(2, "big"))


def install_gas(hub: CommsHub, gsme: GasMeter, function: GasProxyFunction,
                install_code: bytes | None = None) -> GasProxy:
    """Join the gas meter to the hub's HAN and put the gas proxy in front of it."""
    hub.join(gsme, install_code, DeviceKind.GSME)
    proxy = GasProxy(hub, gsme.eui, function)
    hub.gas_meter = gsme.eui
    hub.gas_proxy_eui = function.eui
    hub.gas_proxy = proxy
    return proxy


def push_mirror(hub: CommsHub, gsme: GasMeter) -> bool:
    """The gas meter's half-hourly push: sealed with its link key, opened by the CHF applet."""
    attachment = hub.han.get(gsme.eui)
    if attachment is None:
        return False
    before = hub.gas_mirror_updates
    meter_time = zcl_time(gsme.meter_time()).to_bytes(4, "big")
    hub.receive_from_han(attachment.link.seal(MIRROR_TAG + meter_time + gsme.mirror_snapshot()))
    return hub.gas_mirror_updates > before

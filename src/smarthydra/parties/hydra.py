"""The parties' side of Hydra: the card issuer's applet-key certificates, and each party
checking what the hub's applets send it.

The **card issuer** personalises the hub's secure element (:mod:`smarthydra.applets.hub`),
authorises post-issuance loads with delegated-management tokens (the billing applet: see
:func:`deploy_billing`, where the supplier adds its DAP and its SSD does the loading),
reads each applet's signing key through the card and certifies it: an **applet-key
certificate** is a COSE_Sign1 by the issuer over
``{"type": "applet-key", "hub", "aid", "applet", "source-sha256", "key"}``. The source hash
is that of the public source of the code the issuer installed (:func:`source_hash`).

A party receiving a sealed statement (:func:`open_statement`) opens it with its own
key-agreement key, checks the certificate with the issuer's key, the statement's signature
with the certified key, and - where it matters - that the certified source hash is one it
approved. The **supplier** additionally checks that a bill is for its meter, for the tariff it
sent, and carries the certified source hash.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.applets import cose
from smarthydra.applets.consent import Consent
from smarthydra.applets.hub import (
    BILLING,
    SLOTS_BY_NAME,
    AppletSlot,
    HydraHost,
    HydraSetup,
    PartyPublic,
    billing_package,
    ssd_aid,
)
from smarthydra.applets.tariff import Tariff, tariff_payload
from smarthydra.card.gp import management as gpm
from smarthydra.card.gp.apdu import CommandApdu
from smarthydra.card.gp.client import (
    GpClient,
    dap_signature,
    install_command,
    install_for_load_command,
    install_for_personalization_command,
    load_commands,
    token_signer_for,
)
from smarthydra.card.gp.errors import GpError
from smarthydra.card.package import AppletPackage
from smarthydra.crypto import primitives


class StatementRejected(Exception):
    """What a party received does not verify; the message says why."""


class UnapprovedApplet(StatementRejected):
    """The statement verifies, but was computed by code the party has not approved."""


@dataclass
class PartyKeys:
    """A party's P-256 signing and key-agreement keys (in an HSM in production)."""

    name: str
    signing: ec.EllipticCurvePrivateKey = field(default_factory=primitives.generate_private_key)
    agreement: ec.EllipticCurvePrivateKey = field(
        default_factory=primitives.generate_private_key)

    @property
    def public(self) -> PartyPublic:
        return PartyPublic(self.name, primitives.public_key_to_xy(self.signing.public_key()),
                           primitives.public_key_to_xy(self.agreement.public_key()))

    def sign(self, data: bytes) -> bytes:
        return primitives.ecdsa_sign(self.signing, data)


@dataclass(frozen=True)
class AppletCertificate:
    hub: str
    aid: bytes
    applet: str
    source_sha256: bytes
    key: ec.EllipticCurvePublicKey


class CardIssuer:
    """Owns the hub secure elements: installs the applets and certifies their keys."""

    def __init__(self, name: str = "card-issuer") -> None:
        self.keys = PartyKeys(name)
        self.token_key = primitives.generate_private_key()
        self.certificates: dict[tuple[str, bytes], bytes] = {}
        #: what the issuer authorised: (hub, load file AID) -> Load File Data Block hash
        self.authorised: dict[tuple[str, bytes], bytes] = {}

    @property
    def token_public(self) -> bytes:
        return primitives.public_key_to_xy(self.token_key.public_key())

    def authorise_load(self, hub: str, package: AppletPackage, sd_aid: bytes,
                       instance_aid: bytes, params: bytes) -> tuple[bytes, bytes]:
        """INSTALL [for load] and INSTALL [for install and make selectable], each with the
        issuer's token (GP delegated management): the load token covers the Load File Data
        Block hash, so the card takes only this package."""
        block = package.encode()
        signer = token_signer_for(self.token_key)
        modules = list(package.manifest.modules)
        load = install_for_load_command(package.aid, sd_aid=sd_aid,
                                        block_hash=gpm.load_file_data_block_hash(block),
                                        token_signer=signer)
        install = install_command(package.aid, modules[0], instance_aid, params=params,
                                  token_signer=signer)
        self.authorised[(hub, package.aid)] = gpm.load_file_data_block_hash(block)
        return load, install

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.keys.signing.public_key()

    def certify(self, hub: str, slot: AppletSlot, source: bytes, key_xy: bytes) -> bytes:
        certificate = cose.sign1({"type": "applet-key", "hub": hub, "aid": slot.aid,
                                  "applet": slot.name, "source-sha256": source, "key": key_xy},
                                 b"issuer", self.keys.sign)
        self.certificates[(hub, slot.aid)] = certificate
        return certificate

    def personalise(self, setup: HydraSetup, supplier: Supplier | None = None) -> HydraHost:
        """Build a hub's secure element (with ``supplier`` loading its post-issuance billing
        applet, when the setup has one) and certify every applet's key."""
        host = HydraHost.build(setup)
        if setup.post_issuance_billing:
            if supplier is None:
                raise ValueError("a post-issuance billing applet needs its supplier to load it")
            deploy_billing(host, setup, self, supplier)
        self.certify_hub(setup, host)
        return host

    def certify_hub(self, setup: HydraSetup, host: HydraHost) -> None:
        """Certify the key of every applet of a secure element personalised from ``setup``."""
        for slot in SLOTS_BY_NAME.values():
            self.certify(setup.hub, slot, setup.source_of(slot), host.public_key(slot))

    def certificate(self, hub: str, aid: bytes) -> bytes:
        try:
            return self.certificates[(hub, aid)]
        except KeyError:
            raise StatementRejected(f"no applet certificate for {aid.hex()} on {hub}") from None


def parse_certificate(certificate: bytes, issuer: ec.EllipticCurvePublicKey
                      ) -> AppletCertificate:
    try:
        payload = cose.verify_sign1(certificate, issuer)
    except cose.EnvelopeError as exc:
        raise StatementRejected(f"applet certificate: {exc}") from None
    try:
        if payload["type"] != "applet-key":
            raise StatementRejected("not an applet-key certificate")
        return AppletCertificate(str(payload["hub"]), bytes(payload["aid"]),
                                 str(payload["applet"]), bytes(payload["source-sha256"]),
                                 primitives.public_key_from_xy(bytes(payload["key"])))
    except (KeyError, TypeError, primitives.InvalidKey) as exc:
        raise StatementRejected(f"malformed applet certificate: {exc}") from None


def verify_statement(statement: bytes, certificate: bytes, issuer: ec.EllipticCurvePublicKey,
                     *, applet: str, approved: frozenset[bytes] | None = None
                     ) -> dict[str, Any]:
    """The payload of a signed statement from the certified ``applet``, or StatementRejected."""
    cert = parse_certificate(certificate, issuer)
    if cert.applet != applet:
        raise StatementRejected(f"certificate is for the {cert.applet} applet, not {applet}")
    try:
        parsed = cose.parse_sign1(statement)
    except cose.EnvelopeError as exc:
        raise StatementRejected(str(exc)) from None
    if parsed.kid != cert.aid:
        raise StatementRejected("statement was not signed by the certified applet")
    if not parsed.verify(cert.key):
        raise StatementRejected("statement signature does not verify (tampered?)")
    if approved is not None and cert.source_sha256 not in approved:
        raise UnapprovedApplet(
            f"applet source {cert.source_sha256.hex()[:16]}... is not an approved {applet}")
    if not isinstance(parsed.payload, dict):
        raise StatementRejected("statement payload is not a map")
    payload: dict[str, Any] = parsed.payload
    if payload.get("hub") != cert.hub:
        raise StatementRejected("statement names another hub")
    return payload


@dataclass
class HydraParty:
    """A party with its keys that receives sealed statements from one kind of applet."""

    keys: PartyKeys
    issuer: CardIssuer
    applet: str
    received: list[dict[str, Any]] = field(default_factory=list)
    bytes_received: int = 0

    @property
    def name(self) -> str:
        return self.keys.name

    def open(self, sealed: bytes, approved: frozenset[bytes] | None = None) -> dict[str, Any]:
        try:
            header, statement = cose.open_sealed(sealed, self.keys.agreement)
        except cose.EnvelopeError as exc:
            raise StatementRejected(f"cannot open: {exc}") from None
        if header.recipient != self.name:
            raise StatementRejected(f"sealed for {header.recipient}, not {self.name}")
        hub = header.sender.rsplit("/", 1)[0]
        slot = SLOTS_BY_NAME[self.applet]
        payload = verify_statement(statement, self.issuer.certificate(hub, slot.aid),
                                   self.issuer.public_key, applet=self.applet,
                                   approved=approved)
        self.received.append(payload)
        self.bytes_received += len(sealed)
        return payload


@dataclass(frozen=True)
class VerifiedBill:
    hub: str
    meter: str
    first: dt.date
    last: dt.date
    tariff_id: str
    amount_pence: int


class Supplier(HydraParty):
    """The supplier: sends tariffs and consent instructions, receives bills."""

    def __init__(self, keys: PartyKeys, issuer: CardIssuer,
                 approved_billing: frozenset[bytes] | None = None) -> None:
        super().__init__(keys, issuer, "billing")
        self.approved_billing = (approved_billing if approved_billing is not None
                                 else frozenset({billing_package().manifest.source_hash}))
        self.tariffs: dict[tuple[str, int], Tariff] = {}
        self._seq = itertools.count(1)
        self.bills: list[VerifiedBill] = []

    def approve_load(self, package: AppletPackage) -> bytes:
        """The supplier's DAP over a billing load file whose source it approved."""
        if package.manifest.source_hash not in self.approved_billing:
            raise UnapprovedApplet("the supplier has not approved this billing applet source")
        return dap_signature(self.keys.signing, package.encode())

    def tariff_message(self, tariff: Tariff) -> bytes:
        self.tariffs[(tariff.tariff_id, tariff.version)] = tariff
        return cose.sign1({**tariff_payload(tariff), "seq": next(self._seq)}, b"supplier",
                          self.keys.sign)

    def consent_instruction(self, op: str, body: Consent | str) -> bytes:
        """A consent grant or revocation the consumer asked the supplier to pass on."""
        key = "consent" if op == "grant" else "party"
        value = body.to_payload() if isinstance(body, Consent) else body
        return cose.sign1({"op": op, key: value, "seq": next(self._seq)}, b"supplier",
                          self.keys.sign)

    def receive_bill(self, sealed: bytes, meter: str | None = None) -> VerifiedBill:
        payload = self.open(sealed, self.approved_billing)
        hub = str(payload.get("hub"))
        certificate = parse_certificate(
            self.issuer.certificate(hub, SLOTS_BY_NAME["billing"].aid), self.issuer.public_key)
        try:
            if payload["type"] != "bill" or payload["currency"] != "GBP":
                raise StatementRejected("not a GBP bill")
            if payload["source-sha256"] != certificate.source_sha256:
                raise StatementRejected("bill names a source other than the certified one")
            tariff = self.tariffs.get((payload["tariff"], payload["tariff-version"]))
            if tariff is None or tariff.digest != payload["tariff-sha256"]:
                raise StatementRejected("bill is not under a tariff this supplier sent")
            if meter is not None and payload["meter"] != meter:
                raise StatementRejected("bill is for another meter")
            first, last = (dt.date.fromisoformat(d) for d in payload["period"])
            bill = VerifiedBill(hub, str(payload["meter"]), first, last, tariff.tariff_id,
                                int(payload["amount-pence"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise StatementRejected(f"malformed bill: {exc}") from None
        self.bills.append(bill)
        return bill

    def receive_verdict(self, verdict: bytes, hub: str) -> dict[str, Any]:
        """The audit applet's signed verdict on a disputed bill (no raw data in it)."""
        slot = SLOTS_BY_NAME["audit"]
        return verify_statement(verdict, self.issuer.certificate(hub, slot.aid),
                                self.issuer.public_key, applet="audit")


class Distributor(HydraParty):
    def __init__(self, keys: PartyKeys, issuer: CardIssuer) -> None:
        super().__init__(keys, issuer, "power-quality")


class EnergyAgent(HydraParty):
    def __init__(self, keys: PartyKeys, issuer: CardIssuer) -> None:
        super().__init__(keys, issuer, "energy-agent")


class OtherUser(HydraParty):
    """A price-comparison service (a DCC Other User)."""

    def __init__(self, keys: PartyKeys, issuer: CardIssuer) -> None:
        super().__init__(keys, issuer, "price-comparison")


class Ombudsman(HydraParty):
    def __init__(self, keys: PartyKeys, issuer: CardIssuer) -> None:
        super().__init__(keys, issuer, "audit")

    def check_justification(self, sealed: bytes) -> dict[str, Any]:
        """Open a bill justification and check that its breakdown adds up to the bill."""
        payload = self.open(sealed)
        breakdown = payload["breakdown"]
        total = sum(breakdown["cost-micropence"].values()) + breakdown["standing-micropence"]
        payload["adds-up"] = (total + 500_000) // 1_000_000 == breakdown["amount"]
        return payload


STORE_DATA_BLOCK = 200


def _settings_blocks(settings: dict[str, Any]) -> list[bytes]:
    """Settings as STORE DATA blocks: CBOR maps of at most :data:`STORE_DATA_BLOCK` bytes."""
    blocks: list[dict[str, Any]] = [{}]
    for key, value in settings.items():
        if blocks[-1] and len(cose.canonical({**blocks[-1], key: value})) > STORE_DATA_BLOCK:
            blocks.append({})
        blocks[-1][key] = value
    return [cose.canonical(block) for block in blocks]


class DeploymentRefused(Exception):
    """The card refused a step of a post-issuance load (the message names it)."""


def deploy_billing(host: HydraHost, setup: HydraSetup, issuer: CardIssuer, supplier: Supplier,
                   package: AppletPackage | None = None, dap: bytes | None = None,
                   transmit: Callable[[bytes], bytes] | None = None,
                   channel: int | None = None) -> None:
    """Load, install and personalise the billing applet through the supplier's SSD.

    The supplier opens SCP03 with its SSD and sends the issuer's token-carrying INSTALL
    [for load] (bound to the Load File Data Block hash), LOAD blocks carrying its own DAP
    block (its SSD has DAP Verification: without a DAP that verifies the card refuses the
    load), the issuer's INSTALL [for install], then INSTALL [for personalization] and STORE
    DATA with the applet's settings. ``dap`` overrides the supplier's signature (tests).
    ``transmit`` and ``channel`` are the supplier's route to the card (the WAN, on the hub's
    party channel); by default the host relays in process on its own channel.
    """
    package = package or billing_package()
    sd = ssd_aid("supplier")
    load, install = issuer.authorise_load(setup.hub, package, sd, BILLING.aid,
                                          cose.canonical({"sd": sd}))
    signature = dap if dap is not None else supplier.approve_load(package)
    client = GpClient(transmit or host.relay, host.channel if channel is None else channel)
    steps: list[tuple[str, bytes]] = [("INSTALL [for load]", load)]
    steps += [("LOAD", command) for command in load_commands(
        gpm.LoadFile({sd: signature}, package.encode()))]
    steps += [("INSTALL [for install]", install),
              ("INSTALL [for personalization]", install_for_personalization_command(BILLING.aid))]
    blocks = _settings_blocks(cbor2.loads(setup.install_params(BILLING)))
    steps += [("STORE DATA", CommandApdu(0x80, 0xE2, 0x80 if n == len(blocks) - 1 else 0x00, n,
                                         block, None).to_bytes())
              for n, block in enumerate(blocks)]
    try:
        client.select(sd)
        client.open_scp03(setup.channel_keys("supplier"), security_level=0x33, sd_aid=sd)
        for what, command in steps:
            response = client.send(command)
            if response.sw != 0x9000:
                raise DeploymentRefused(f"{what} refused with SW {response.sw:04X}")
    except GpError as exc:
        raise DeploymentRefused(f"secure channel to the supplier's SSD: {exc}") from None

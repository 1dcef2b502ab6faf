"""SMKI on top of a simulated world: the DCC's own SMKI parties, device trust anchors, CS02b.

:func:`enable_smki` turns a :func:`~smarthydra.sim.world.build_world` world into one where

- the DCC holds recovery, transitional CoS and WAN provider signing keys with organisation
  certificates, plus the contingency key (its public half stored wrapped in every device);
- the supplier also has a prepayment top-up key-agreement certificate;
- every meter has the full set of GBCS trust-anchor cells (``premises.anchors``), bound so
  that its remote parties come from them;
- the DCC refuses users whose organisation certificate is revoked (from the CRL), and builds
  the CS02b commands for SRV 6.15.1 (pre-command for the user to sign) and 6.23 (signed by
  the DCC as transitional CoS party).

The DCC-internal CS02b variants (ACB, WAN provider, transitional CoS, recovery, contingency)
go through :meth:`DccSecurityOperations.send`: the DCC's ACB MACs them (or, for recovery and
contingency, they may go signed only) and the WAN carries them to the hub and the meter.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import random
from dataclasses import dataclass, field

from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.dcc.transform import DccOriginator, DeviceType, Target, TransformError, transform
from smarthydra.dcc.transform.engine import body_value
from smarthydra.duis.matrix import ServiceRequestMatrix, ServiceRequestVariant
from smarthydra.duis.request import ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.builder import build_precommand, sign_precommand
from smarthydra.gbcs.envelope import CraFlag, GeneralSigning, decode_message
from smarthydra.gbcs.errors import GbcsError
from smarthydra.pki.certificates import CaCertificate, OrganisationCertificate
from smarthydra.pki.credentials import (
    AuthorisingControl,
    CellId,
    CellKeyUsage,
    CellRole,
    CellUsage,
    CredentialsReplacementMode,
    Replacement,
    SeqNumberChange,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsResponse,
    decode_response,
    encode_command,
)
from smarthydra.pki.hierarchy import CaHierarchy, SmkiRepository
from smarthydra.pki.profile import SmkiRole
from smarthydra.pki.revocation import RevocationCheck
from smarthydra.premises.anchors import (
    AUTHORISER,
    DeviceTrustAnchors,
    cell_for,
    wrap_contingency_key,
)
from smarthydra.sim.world import START, SUPPLIER_EUI, World

Mode = CredentialsReplacementMode

RECOVERY_EUI = Eui64.parse("90B3D51F30000001")
TRANS_COS_EUI = Eui64.parse("90B3D51F30000004")
WAN_PROVIDER_EUI = Eui64.parse("90B3D51F30000007")
CONTINGENCY_EUI = Eui64.parse("70B3D51F300017FF")
NEW_SUPPLIER_EUI = Eui64.parse("90B3D51F30030000")  # the gaining supplier in the RTDS CoS
ORG_VALIDITY = dt.timedelta(days=3650)

SUPPLIER_DS = CellId(CellRole.SUPPLIER, CellKeyUsage.DIGITAL_SIGNATURE)
SUPPLIER_KA = CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT)
SUPPLIER_TOP_UP = CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP)


class CredentialsRefused(Exception):
    """A CS02b exchange could not be made (no device, bad response)."""


@dataclass(frozen=True)
class OrganisationKeys:
    """An organisation's keys (DS, KA and optionally prepayment top-up KA) and certificates."""

    eui: Eui64
    role: int
    keystore: Keystore
    certificates: dict[str, OrganisationCertificate]

    def replacements(self) -> list[tuple[CellId, OrganisationCertificate]]:
        out = []
        for label, certificate in self.certificates.items():
            out.append((cell_for(certificate, top_up=label == "pp-ka"), certificate))
        return out


def issue_organisation_keys(
    smki: CaHierarchy,
    repository: SmkiRepository,
    eui: Eui64,
    role: int,
    labels: tuple[str, ...] = ("ds", "ka"),
    *,
    keystore: Keystore | None = None,
    not_before: dt.datetime = START,
) -> OrganisationKeys:
    """Keys in a (new) keystore and their organisation certificates, published."""
    store = keystore if keystore is not None else SoftKeystore(None, passphrase=b"org")
    certificates = {}
    for label in labels:
        usage = KeyUsage.DIGITAL_SIGNATURE if label == "ds" else KeyUsage.KEY_AGREEMENT
        public = store.public_key(label) if label in store else store.generate(label, usage)
        certificate = smki.issue_organisation(
            subject_public_key=public,
            role=role,
            eui64=eui.value,
            usage=usage,
            not_before=not_before,
            not_after=not_before + ORG_VALIDITY,
        )
        repository.publish(certificate)
        certificates[label] = certificate
    return OrganisationKeys(eui, role, store, certificates)


@dataclass
class DccSecurityOperations:
    """The DCC as SMKI recovery, contingency, transitional CoS, WAN provider and ACB party."""

    world: World
    recovery: OrganisationKeys
    trans_cos: OrganisationKeys
    wan_provider: OrganisationKeys
    contingency_keys: Keystore
    contingency_wrapping_key: bytes
    revocation: RevocationCheck
    counters: dict[int, int] = field(default_factory=dict)
    independent: CaHierarchy | None = None

    def next_counter(self, role: int, start: int) -> int:
        self.counters[role] = self.counters.get(role, start) + 1
        return self.counters[role]

    @property
    def smki(self) -> CaHierarchy:
        return self.world.smki

    def path(self) -> tuple[bytes, ...]:
        """Certification path certificates: the organisation CA (and the independent one)."""
        path = [self.world.smki.organisation_ca.der]
        if self.independent is not None:
            path.append(self.independent.organisation_ca.der)
        return tuple(path)

    def command(
        self,
        *,
        mode: Mode,
        originator: Eui64,
        device: Eui64,
        counter: int,
        replacements: list[tuple[CellId, bytes]],
        path: tuple[bytes, ...] | None = None,
        new_floor: int | None = 0,
        new_top_up_floor: int | None = None,
        other_changes: tuple[SeqNumberChange, ...] = (),
        plaintext_symmetric_key: bytes | None = None,
        signature_field: bool = True,
    ) -> GeneralSigning:
        """The unsigned CS02b general-signing APDU."""
        update = UpdateSecurityCredentials(
            AuthorisingControl(
                mode=mode,
                seq_number=counter,
                authorising_cell=None if mode is Mode.ACB_BY_ACB else AUTHORISER[mode],
                plaintext_symmetric_key=plaintext_symmetric_key,
                apply_time_based_checks=True,
                new_floor=new_floor,
                new_top_up_floor=new_top_up_floor,
                other_changes=other_changes,
            ),
            tuple(Replacement(der, cell) for cell, der in replacements),
            self.path() if path is None else path,
        )
        return build_precommand(
            originator=originator.value,
            recipient=device.value,
            counter=counter,
            message_code=mode.message_code,
            payload=encode_command(update),
            signature_field=signature_field,
        )

    def send(self, device: Eui64, command: GeneralSigning, *, maced: bool = True) -> bytes | None:
        """Deliver a DCC-originated CS02b command over the WAN; the device's response."""
        dcc = self.world.dcc
        record = dcc.inventory.device(device)
        if record is None:
            raise CredentialsRefused(f"device {device} is not in the inventory")
        wire = dcc.acb.mac_command(command, record.key_agreement_key) if maced else command.wire()
        dcc.audit.append(
            self.world.clock.now(),
            "DCC SMKI",
            f"CS02b {Mode.for_message_code(command.message_code)} sent",
            device=str(device),
        )
        if maced:
            return self.world.wan.deliver(record.hub, wire)
        home = next(h for h in self.world.homes if h.esme.eui == device)
        return home.esme.receive(wire)  # signed only: over the HAN from a local tool

    # --- the DCC-internal variants -------------------------------------------------------

    def _signed(self, keys: OrganisationKeys | Keystore, gs: GeneralSigning) -> GeneralSigning:
        keystore = keys.keystore if isinstance(keys, OrganisationKeys) else keys
        return sign_precommand(gs, keystore=keystore, label="ds")

    def replace_by_recovery(
        self,
        device: Eui64,
        replacements: list[tuple[CellId, bytes]],
        *,
        other_changes: tuple[SeqNumberChange, ...] = (),
        path: tuple[bytes, ...] | None = None,
        maced: bool = True,
    ) -> bytes | None:
        counter = self.next_counter(CellRole.RECOVERY, 7000)
        gs = self.command(
            mode=Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY,
            originator=self.recovery.eui,
            device=device,
            counter=counter,
            replacements=replacements,
            other_changes=other_changes,
            path=path,
        )
        return self.send(device, self._signed(self.recovery, gs), maced=maced)

    def replace_by_contingency(
        self,
        device: Eui64,
        replacements: list[tuple[CellId, bytes]],
        *,
        path: tuple[bytes, ...],
        other_changes: tuple[SeqNumberChange, ...] = (),
        maced: bool = True,
        contingency_keys: Keystore | None = None,
        wrapping_key: bytes | None = None,
    ) -> bytes | None:
        counter = self.next_counter(CellRole.ROOT, 5000)
        gs = self.command(
            mode=Mode.ANY_BY_CONTINGENCY,
            originator=CONTINGENCY_EUI,
            device=device,
            counter=counter,
            replacements=replacements,
            path=path,
            other_changes=other_changes,
            plaintext_symmetric_key=wrapping_key or self.contingency_wrapping_key,
        )
        signed = sign_precommand(gs, keystore=contingency_keys or self.contingency_keys, label="ds")
        return self.send(device, signed, maced=maced)

    def replace_own(
        self, mode: Mode, device: Eui64, new: OrganisationKeys, old: OrganisationKeys | None
    ) -> bytes | None:
        """ACB by ACB, WAN provider by WAN provider, TransCoS by TransCoS."""
        start = {Mode.ACB_BY_ACB: 1300, Mode.WAN_PROVIDER_BY_WAN_PROVIDER: 8000}.get(mode, 6000)
        role = {
            Mode.ACB_BY_ACB: CellRole.ACCESS_CONTROL_BROKER,
            Mode.WAN_PROVIDER_BY_WAN_PROVIDER: CellRole.WAN_PROVIDER,
            Mode.TRANS_COS_BY_TRANS_COS: CellRole.TRANSITIONAL_COS,
        }[mode]
        counter = self.next_counter(role, start)
        gs = self.command(
            mode=mode,
            originator=new.eui,
            device=device,
            counter=counter,
            replacements=[(c, cert.der) for c, cert in new.replacements()],
        )
        if mode is not Mode.ACB_BY_ACB:
            assert old is not None
            gs = self._signed(old, gs)
        return self.send(device, gs)

    # --- DUIS transforms (DataCommsCompany.extra_transforms) -----------------------------
    # The GBCS comes from the DCC transform (dcc.transform: the DUIS body per the XSD);
    # the SMKI side adds the DCC's checks on the certificates and, for 6.23, its signature
    # as transitional CoS party.

    def transform_6_15_1(self, request: ServiceRequest, critical: bool) -> GeneralSigning:
        """Update Security Credentials (KRP): the requester replaces its own cells."""
        role_name = body_value(request.parameters, "RemotePartyRole")
        role = KRP_ROLES.get(role_name or "")
        if role is None:
            raise TransformError(f"RemotePartyRole {role_name!r} is not a KRP role")
        certificates = _body_certificates(
            request.parameters, "ReplacementCertificates/SupplierOrNetworkOperatorCertificates"
        )
        for der in certificates:
            certificate = self.repository_certificate(der)
            if certificate.role != role:
                raise TransformError(f"certificate role {certificate.role:02X} is not {role:02X}")
            if certificate.eui64 != request.request_id.originator.value:
                raise TransformError("6.15.1 replaces the requester's own certificates only")
        result = transform(
            request,
            Target(DeviceType.ESME),
            check_variant=False,
            precommand_signature_field=not critical,
        )
        return result.general_signing

    def transform_6_23(self, request: ServiceRequest, critical: bool) -> GeneralSigning:
        """Update Security Credentials (CoS): the DCC, as transitional CoS party, signs."""
        certificates = _body_certificates(request.parameters, "SupplierReplacementCertificates")
        for der in certificates:
            certificate = self.repository_certificate(der)
            if certificate.role != CellRole.SUPPLIER or certificate.eui64 != request.sender.value:
                raise TransformError("6.23 carries the gaining supplier's own certificates only")
        counter = self.next_counter(CellRole.TRANSITIONAL_COS, 6000)
        result = transform(
            request,
            Target(DeviceType.ESME),
            check_variant=False,
            dcc=DccOriginator(self.trans_cos.eui.value, counter),
        )
        return self._signed(self.trans_cos, result.general_signing)

    def repository_certificate(self, der: bytes) -> OrganisationCertificate:
        from smarthydra.pki.certificates import parse_certificate

        try:
            certificate = parse_certificate(der)
        except Exception as exc:  # malformed DER: name it in the DUIS refusal
            raise TransformError(f"replacement certificate does not parse: {exc}") from None
        if not isinstance(certificate, OrganisationCertificate):
            raise TransformError("a replacement certificate must be an organisation certificate")
        try:
            self.world.repository.validate(certificate, self.world.clock.now())
        except Exception as exc:  # CertificateRejected: name it in the DUIS refusal
            raise TransformError(f"replacement certificate refused: {exc}") from None
        return certificate


KRP_ROLES = {"Supplier": CellRole.SUPPLIER, "NetworkOperator": CellRole.NETWORK_OPERATOR}
CERTIFICATE_ELEMENTS = (
    "DigitalSigningCertificate",
    "KeyAgreementCertificate",
    "KeyAgreementTopUpCertificate",
)


def _body_certificates(parameters: dict[str, object], path: str) -> list[bytes]:
    """The replacement certificates (DER) at ``path`` of a DUIS body."""
    out = []
    for name in CERTIFICATE_ELEMENTS:
        text = body_value(parameters, f"{path}/{name}")
        if text is None:
            continue
        try:
            out.append(base64.b64decode("".join(text.split()), validate=True))
        except (binascii.Error, ValueError):
            raise TransformError(f"{name} is not base64") from None
    if not out:
        raise TransformError("no replacement certificates in the request")
    return out


def certificate_elements(keys: OrganisationKeys) -> dict[str, object]:
    """An organisation's replacement certificates as DUIS elements (base64 DER)."""
    elements = {"ds": "DigitalSigningCertificate", "ka": "KeyAgreementCertificate"}
    elements["pp-ka"] = "KeyAgreementTopUpCertificate"
    return {
        elements[label]: base64.b64encode(keys.certificates[label].der).decode("ascii")
        for label in ("ds", "ka", "pp-ka")
        if label in keys.certificates
    }


def path_element(path: tuple[bytes, ...]) -> dict[str, object]:
    """CertificationPathCertificates: one to three certificates."""
    encoded = [base64.b64encode(der).decode("ascii") for der in path]
    return {"Certificate": encoded[0] if len(encoded) == 1 else encoded}


def change_of_supplier_body(
    keys: OrganisationKeys, path: tuple[bytes, ...], import_mpxn: str
) -> dict[str, object]:
    """A 6.23 Update Security Credentials (CoS) body, in the XSD's element order."""
    body: dict[str, object] = {"SupplierFloorSeqNumber": "0"}
    if "pp-ka" in keys.certificates:
        body["SupplierPrepaymentTopUpFloorSeqNumber"] = "0"
    body["SupplierReplacementCertificates"] = certificate_elements(keys)
    body["CertificationPathCertificates"] = path_element(path)
    body["ApplyTimeBasedCPVChecks"] = "true"
    body["ImportMPxN"] = import_mpxn
    return body


def krp_body(keys: OrganisationKeys, path: tuple[bytes, ...], role: str) -> dict[str, object]:
    """A 6.15.1 Update Security Credentials (KRP) body, in the XSD's element order."""
    body: dict[str, object] = {"RemotePartyRole": role, "RemotePartyFloorSeqNumber": "0"}
    if "pp-ka" in keys.certificates:
        body["RemotePartyPrepaymentTopUpFloorSeqNumber"] = "0"
    body["ReplacementCertificates"] = {
        "SupplierOrNetworkOperatorCertificates": certificate_elements(keys)
    }
    body["CertificationPathCertificates"] = path_element(path)
    body["ApplyTimeBasedCPVChecks"] = "true"
    return body


def read_response(
    world: World, wire: bytes | None, device: Eui64, recipient: Eui64
) -> UpdateSecurityCredentialsResponse:
    """Check a device's CS02b response (its signature, addressing) and decode it."""
    if wire is None:
        raise CredentialsRefused("the device dropped the command (see its log)")
    try:
        message = decode_message(wire)
    except GbcsError as exc:
        raise CredentialsRefused(f"malformed response: {exc}") from None
    gs = message.general_signing
    if gs.cra_flag is not CraFlag.RESPONSE or gs.originator != device.value:
        raise CredentialsRefused("not a response from this device")
    if gs.recipient != recipient.value:
        raise CredentialsRefused("response addressed to someone else")
    keys = [
        c.public_key
        for c in world.repository.by_eui64(device.value, usage=KeyUsage.DIGITAL_SIGNATURE)
    ]
    if not keys or not any(security.verify_signature(gs, k) for k in keys):
        raise CredentialsRefused("the response is not signed by the device")
    return decode_response(gs.payload)


def enable_smki(
    world: World,
    *,
    seed: int = 7,
    independent_root: bool = False,
) -> DccSecurityOperations:
    """Give the world's DCC its SMKI parties and every meter its trust-anchor cells."""
    rng = random.Random(seed)
    smki, repository = world.smki, world.repository
    recovery = issue_organisation_keys(smki, repository, RECOVERY_EUI, SmkiRole.RECOVERY, ("ds",))
    trans_cos = issue_organisation_keys(
        smki, repository, TRANS_COS_EUI, SmkiRole.TRANSITIONAL_COS, ("ds",)
    )
    wan_provider = issue_organisation_keys(
        smki, repository, WAN_PROVIDER_EUI, SmkiRole.WAN_PROVIDER, ("ds",)
    )
    supplier = issue_organisation_keys(
        smki,
        repository,
        SUPPLIER_EUI,
        SmkiRole.SUPPLIER,
        ("pp-ka",),
        keystore=world.supplier.keystore,
    )
    contingency = SoftKeystore(None, passphrase=b"contingency")
    contingency.generate("ds", KeyUsage.DIGITAL_SIGNATURE)
    wrapping_key = rng.randbytes(16)
    wrapped = wrap_contingency_key(contingency.public_key("ds"), wrapping_key)

    revocation = RevocationCheck(repository)
    world.dcc.credential_check = revocation.check_user

    independent = None
    if independent_root:
        independent = CaHierarchy.create(
            SoftKeystore(None, passphrase=b"independent"),
            not_before=START,
            not_after=START + dt.timedelta(days=36500),
            device_ca_capacity=1,
            label_prefix="independent",
            root_name="INDEPENDENT",
            organisation_ca_name="I1",
            rng=rng.randbytes,
        )
    operations = DccSecurityOperations(
        world,
        recovery,
        trans_cos,
        wan_provider,
        contingency,
        wrapping_key,
        revocation,
        independent=independent,
    )
    _ensure_security_variants(world)
    world.dcc.extra_transforms["6.15.1"] = operations.transform_6_15_1
    world.dcc.extra_transforms["6.23"] = operations.transform_6_23

    anchors: list[tuple[CellId, OrganisationCertificate]] = []
    for eui, role in (
        (RECOVERY_EUI, SmkiRole.RECOVERY),
        (TRANS_COS_EUI, SmkiRole.TRANSITIONAL_COS),
        (WAN_PROVIDER_EUI, SmkiRole.WAN_PROVIDER),
        (SUPPLIER_EUI, SmkiRole.SUPPLIER),
        (world.network_operator.eui, SmkiRole.NETWORK_OPERATOR),
        (world.dcc.acb.eui, SmkiRole.ACCESS_CONTROL_BROKER),
    ):
        for certificate in repository.by_role(int(role)):
            if certificate.eui64 == eui.value and (  # any prepayment top-up cert goes below
                certificate.public_key != supplier.certificates["pp-ka"].public_key
            ):
                anchors.append((cell_for(certificate), certificate))
    anchors.append((SUPPLIER_TOP_UP, supplier.certificates["pp-ka"]))
    for home in world.homes:
        install_anchors(world, home.esme, anchors, wrapped, independent)
    return operations


# The two security-credential SRVs as the DUIS matrix has them, for worlds built on the
# built-in subset of the matrix (no conformance data at hand).
_SECURITY_VARIANTS = (
    ServiceRequestVariant(
        "Update Security Credentials (KRP)",
        "6.15",
        "6.15.1",
        True,
        True,
        "Device",
        False,
        False,
        frozenset({"IS", "GS", "ED", "GT"}),
    ),
    ServiceRequestVariant(
        "Update Security Credentials (CoS)",
        "6.23",
        "6.23",
        False,
        True,
        "DSP & Device",
        False,
        False,
        frozenset({"IS", "GS"}),
    ),
)


def _ensure_security_variants(world: World) -> None:
    matrix = world.dcc.matrix
    missing = [v for v in _SECURITY_VARIANTS if matrix.get(v.variant) is None]
    if missing:
        world.dcc.matrix = ServiceRequestMatrix([*matrix.variants(), *missing])


def install_anchors(
    world: World,
    esme: object,
    anchors: list[tuple[CellId, OrganisationCertificate]],
    wrapped: bytes,
    independent: CaHierarchy | None,
) -> DeviceTrustAnchors:
    from smarthydra.premises.esme import ElectricityMeter

    assert isinstance(esme, ElectricityMeter)
    cells = DeviceTrustAnchors.manufacture(
        esme.eui,
        esme._keystore,
        world.clock,
        root=world.smki.root,
        anchors=anchors,
        wrapped_contingency_key=wrapped,
        independent_root=None if independent is None else independent.root,
    )
    cells.bind(esme)
    return cells


def replace_user_key(world: World, user: Eui64, keys: Keystore) -> None:
    """The DCC's user register learns a user's new signing key (after a CS02 key change)."""
    registered = world.dcc.users.get(user)
    if registered is None:
        raise CredentialsRefused(f"{user} is not a DCC user")
    registered.signing_key = keys.public_key("ds")


__all__ = [
    "CONTINGENCY_EUI",
    "NEW_SUPPLIER_EUI",
    "RECOVERY_EUI",
    "SUPPLIER_DS",
    "SUPPLIER_KA",
    "SUPPLIER_TOP_UP",
    "TRANS_COS_EUI",
    "WAN_PROVIDER_EUI",
    "CaCertificate",
    "CredentialsRefused",
    "DccSecurityOperations",
    "OrganisationKeys",
    "enable_smki",
    "issue_organisation_keys",
    "read_response",
]

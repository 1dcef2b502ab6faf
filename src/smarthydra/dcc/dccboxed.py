"""The ``dccboxed`` profile: a durable DCC that accepts what DCC Boxed's users send.

Built from the conformance data (``smki/`` and ``gbcs/rtds-keystore/``): the DCC Boxed test
organisation certificates validate XML signatures, the DCC signs with its test XML-signing key
(``dsp-xml-sign-90B3D51F30000002``), the ACB MACs with the RTDS key-agreement key of
90-B3-D5-1F-30-00-00-02, and the inventory holds every RTDS device with a key-agreement
certificate, registered to the DCC Boxed supplier (IS, GS) and network operator (ED, GT).

``front_door_processes`` moves XML parsing, schema and signature checks and response drafting
into worker processes (:class:`~smarthydra.dcc.frontdoor.FrontDoorPool`); the DCC then
re-checks each signer's certificate with its own (revocation-aware) lookup.

Device types: DCC Boxed's premises uses 00-DB-12-34-56-78-90-A0 (ESME), -A1 (CHF), -A2 (GPF)
and -A3 (GSME); the other RTDS devices are recorded as ESMEs on hub -A1, which only matters
for the device-type checks this DCC does not make.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.clock import Clock, SystemClock
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.dcc.acb import AccessControlBroker
from smarthydra.dcc.anomaly import AnomalyDetector
from smarthydra.dcc.frontdoor import FrontDoorPool
from smarthydra.dcc.gateway import DccGateway, GatewayConfigError
from smarthydra.dcc.inventory import DccUser, DeviceRecord, DeviceType, Registration, UserStatus
from smarthydra.dcc.operators import OperatorRegistry
from smarthydra.dcc.persistent import SqlSmartMeteringInventory, SqlUserRegister
from smarthydra.dcc.sealing import ColumnSeal
from smarthydra.dcc.service import DataCommsCompany
from smarthydra.dcc.signing import DccSigning, DccSigningKey
from smarthydra.dcc.store import SqlDccStore
from smarthydra.dcc.thresholds import load_stored_thresholds
from smarthydra.dcc.transform.profiles import DCCBOXED_SENDERS
from smarthydra.duis.matrix import load_matrix
from smarthydra.duis.xml import DuisSchema, SchemaNotFound
from smarthydra.duis.xmldsig import (
    CertificateLookup,
    CertificateNotAcceptable,
    CertificateRevoked,
    IssuerSerial,
    XmlSigner,
    static_lookup,
)
from smarthydra.eui import Eui64
from smarthydra.pki.certificates import (
    CertificateError,
    DeviceCertificate,
    OrganisationCertificate,
    parse_certificate,
)
from smarthydra.wan.network import WanNetwork

SUPPLIER = Eui64.parse("90B3D51F30010000")
NETWORK_OPERATOR = Eui64.parse("90B3D51F30020000")
OTHER_USER = Eui64.parse("00DB123456780004")
ACB = Eui64.parse("90B3D51F30000002")
HUB = Eui64.parse("00DB1234567890A1")
DEVICE_TYPES = {
    Eui64.parse("00DB1234567890A0"): DeviceType.ESME,
    HUB: DeviceType.COMMS_HUB,
    Eui64.parse("00DB1234567890A2"): DeviceType.GAS_PROXY,
    Eui64.parse("00DB1234567890A3"): DeviceType.GSME,
}
MPAN = "1100000000001"
MPRN = "1100000001"
REGISTERED_SINCE = dt.datetime(2018, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class DccBoxedProfile:
    dcc: DataCommsCompany
    gateway: DccGateway
    store: SqlDccStore
    users: SqlUserRegister


def _private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    data = path.read_bytes()
    key = (
        serialization.load_pem_private_key(data, None)
        if data.startswith(b"-----")
        else serialization.load_der_private_key(data, None)
    )
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise GatewayConfigError(f"{path} is not an EC private key")
    return key


def _certificate(path: Path) -> OrganisationCertificate | DeviceCertificate:
    try:
        certificate = parse_certificate(path.read_bytes())
    except (OSError, CertificateError) as exc:
        raise GatewayConfigError(f"cannot read certificate {path}: {exc}") from None
    if not isinstance(certificate, OrganisationCertificate | DeviceCertificate):
        raise GatewayConfigError(f"{path} is not an SMKI certificate")
    return certificate


def xml_signing_certificates(smki: Path) -> list[OrganisationCertificate]:
    found = []
    for path in sorted(smki.glob("*.pem")):
        if path.name.endswith(".key.pem"):
            continue
        certificate = _certificate(path)
        if isinstance(certificate, OrganisationCertificate):
            found.append(certificate)
    return found


def with_revocations(lookup: CertificateLookup, revoked: Iterable[int]) -> CertificateLookup:
    """A lookup that refuses certificates whose serial numbers are on the revocation list."""
    revoked_serials = frozenset(revoked)

    def checked(wanted: IssuerSerial) -> OrganisationCertificate:
        certificate = lookup(wanted)
        if certificate.serial in revoked_serials:
            raise CertificateRevoked(f"certificate {certificate.serial} is revoked")
        return certificate

    return checked


def _provision(
    conformance: Path, inventory: SqlSmartMeteringInventory, users: SqlUserRegister
) -> None:
    """First start on an empty database: DCC Boxed's users and the RTDS devices."""
    keys = conformance / "gbcs" / "rtds-keystore"
    if users.get(SUPPLIER) is None:
        for eui, name, roles in (
            (SUPPLIER, "DCC Boxed supplier", ("IS", "GS")),
            (NETWORK_OPERATOR, "DCC Boxed network operator", ("ED", "GT")),
        ):
            certificate = _certificate(keys / f"{eui.value.hex()}-ds.pem")
            users.add(
                DccUser(
                    eui, name, {role: UserStatus.ACTIVE for role in roles}, certificate.public_key
                )
            )
    if not inventory.devices():
        records = []
        for path in sorted(keys.glob("00db*-ka.pem")):
            certificate = _certificate(path)
            eui = Eui64.parse(path.name[:16])
            device_type = DEVICE_TYPES.get(eui, DeviceType.ESME)
            gas = device_type in (DeviceType.GSME, DeviceType.GAS_PROXY)
            records.append(
                DeviceRecord(eui, device_type, HUB, MPRN if gas else MPAN, certificate.public_key)
            )
        inventory.add_devices(records)
        for mpxn, supplier_role, network_role in ((MPAN, "IS", "ED"), (MPRN, "GS", "GT")):
            inventory.register(Registration(mpxn, supplier_role, SUPPLIER, REGISTERED_SINCE))
            inventory.register(
                Registration(mpxn, network_role, NETWORK_OPERATOR, REGISTERED_SINCE)
            )


def build_dccboxed(
    conformance: Path,
    database_url: str = "sqlite://",
    *,
    clock: Clock | None = None,
    wan: WanNetwork | None = None,
    revoked: Iterable[int] = (),
    tie_tls_identity: bool = False,
    sqlite_synchronous: str = "NORMAL",
    front_door_processes: int = 0,
    seal: ColumnSeal | None = None,
) -> DccBoxedProfile:
    smki = conformance / "smki"
    keys = conformance / "gbcs" / "rtds-keystore"
    for folder in (smki, keys, conformance / "duis"):
        if not folder.is_dir():
            raise GatewayConfigError(f"the dccboxed profile needs {folder}")
    try:
        schema = DuisSchema.load(conformance / "duis")
    except SchemaNotFound as exc:
        raise GatewayConfigError(str(exc)) from None
    clock = clock or SystemClock()
    store = SqlDccStore(database_url, sqlite_synchronous=sqlite_synchronous, seal=seal)
    inventory = SqlSmartMeteringInventory(store)
    users = SqlUserRegister(store)
    _provision(conformance, inventory, users)

    keystore = SoftKeystore(None, passphrase=b"dccboxed-profile")
    keystore.import_private_key("acb-ka", _private_key(keys / f"{ACB.value.hex()}-ka.key"), KeyUsage.KEY_AGREEMENT)
    dsp = "dsp-xml-sign-90B3D51F30000002-ds"
    keystore.import_private_key(
        "xml-sign", _private_key(smki / f"{dsp}.key"), KeyUsage.DIGITAL_SIGNATURE
    )
    dsp_certificate = _certificate(smki / f"{dsp}.pem")
    assert isinstance(dsp_certificate, OrganisationCertificate)
    dcc_signing = _dcc_signing(keys, keystore)

    anomaly: AnomalyDetector[object] = AnomalyDetector()
    load_stored_thresholds(store, anomaly)
    dcc = DataCommsCompany(
        clock=clock,
        matrix=load_matrix(conformance),
        inventory=inventory,
        users=users,
        acb=AccessControlBroker(ACB, keystore, "acb-ka"),
        wan=wan or WanNetwork(),
        anomaly=anomaly,
        store=store,
        dcc_signing=dcc_signing,
    )
    trusted = xml_signing_certificates(smki)
    lookup = with_revocations(static_lookup(trusted, at=None), revoked)
    front_door = (
        FrontDoorPool(
            conformance / "duis", trusted, dsp_certificate, processes=front_door_processes
        )
        if front_door_processes
        else None
    )
    gateway = DccGateway(
        dcc=dcc,
        schema=schema,
        signer=XmlSigner(keystore, "xml-sign", dsp_certificate),
        certificates=_dated(lookup, clock),
        durable=True,
        tie_tls_identity=tie_tls_identity,
        front_door=front_door,
        operators=OperatorRegistry(store, audit=dcc.audit, clock=clock),
    )
    return DccBoxedProfile(dcc, gateway, store, users)


def _dcc_signing(keys: Path, keystore: SoftKeystore) -> DccSigning:
    """The DCC Boxed parties that sign what the DCC sends in its own name: the DCC
    (90-B3-D5-1F-30-00-00-02) by default, the transitional CoS party for CS02b by transCoS."""
    signers: dict[bytes, DccSigningKey] = {}
    for eui in {ACB.value, *DCCBOXED_SENDERS.values()}:
        name = f"{eui.hex()}-ds"
        label = f"dcc-ds-{eui.hex()}"
        keystore.import_private_key(
            label, _private_key(keys / f"{name}.key"), KeyUsage.DIGITAL_SIGNATURE
        )
        certificate = _certificate(keys / f"{name}.pem")
        signers[eui] = DccSigningKey(Eui64(eui), keystore, label, certificate.der)
    return DccSigning(
        default=signers[ACB.value],
        by_use_case={use_case: signers[eui] for use_case, eui in DCCBOXED_SENDERS.items()},
    )


def _dated(lookup: CertificateLookup, clock: Clock) -> CertificateLookup:
    """Check validity dates against the DCC's clock at each request (not at start-up)."""

    def checked(wanted: IssuerSerial) -> OrganisationCertificate:
        certificate = lookup(wanted)
        now = clock.now()
        if not certificate.not_before <= now <= certificate.not_after:
            raise CertificateNotAcceptable(
                f"certificate {certificate.serial} is not valid at {now.isoformat()}"
            )
        return certificate

    return checked

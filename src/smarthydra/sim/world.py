"""A whole system in one process: SMKI, DCC, WAN, parties and commissioned homes.

Everything is real: keys are made in keystores, every party and device gets SMKI
certificates from a CA hierarchy whose keys are in a keystore, the DCC learns device keys
from device certificates it validates, meters learn their remote parties from organisation
certificates, and every message on the way is real GBCS.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from smarthydra.clock import FixedClock
from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.dcc.acb import AccessControlBroker
from smarthydra.dcc.anomaly import AnomalyDetector, Threshold
from smarthydra.dcc.inventory import (
    DccUser,
    DeviceRecord,
    DeviceType,
    Registration,
    SmartMeteringInventory,
    SmiStatus,
    UserRegister,
    UserStatus,
)
from smarthydra.dcc.service import DataCommsCompany
from smarthydra.dcc.signing import DccSigning, DccSigningKey
from smarthydra.dcc.store import SqlDccStore
from smarthydra.duis.matrix import load_matrix
from smarthydra.eui import Eui64
from smarthydra.parties.party import DeviceKeys, Party
from smarthydra.pki.certificates import DeviceCertificate, OrganisationCertificate
from smarthydra.pki.hierarchy import CaHierarchy, SmkiRepository
from smarthydra.pki.profile import SmkiRole
from smarthydra.premises.esme import ElectricityMeter, RemoteParty, TrustAnchorRole
from smarthydra.premises.hub import CommsHub
from smarthydra.wan.network import WanNetwork

# The EUI-64s the RTDS uses for these parties, so traces read like the published data.
SUPPLIER_EUI = Eui64.parse("90B3D51F30010000")
NETWORK_OPERATOR_EUI = Eui64.parse("90B3D51F30020000")
ACB_EUI = Eui64.parse("90B3D51F30000002")
FIRST_ESME = 0x00DB1234567890A0
FIRST_HUB = 0x00DB123456780000

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TOP_UP_LABEL = "pp-ka"  # the supplier's prepayment top-up key in its keystore

KeystoreFactory = Callable[[str], Keystore]


# The parties whose keys an HSM holds when one is used; devices keep theirs in their own store.
CENTRAL_KEYSTORES = ("smki", "supplier", "network-operator", "dcc-acb")


def in_memory_keystores(name: str) -> Keystore:
    return SoftKeystore(None, passphrase=name.encode())


def softhsm_keystores(directory: Path, user_pin: str = "0000") -> KeystoreFactory:
    """A factory giving each central party its own SoftHSM2 token under ``directory``.

    All tokens are created first and the SoftHSM2 store activated once, because activating
    re-initialises the PKCS#11 library and would close sessions opened earlier.
    """
    from smarthydra.crypto import softhsm
    from smarthydra.crypto.pkcs11store import Pkcs11Keystore

    tokens = {
        name: softhsm.init_token(directory, name, user_pin, so_pin=user_pin + "so")
        for name in CENTRAL_KEYSTORES
    }
    softhsm.activate(next(iter(tokens.values())))
    stores: dict[str, Keystore] = {}

    def factory(name: str) -> Keystore:
        token = tokens.get(name)
        if token is None:
            return in_memory_keystores(name)
        if name not in stores:
            stores[name] = Pkcs11Keystore(token.module_path, token.token_label, token.user_pin)
        return stores[name]

    return factory


@dataclass
class Home:
    index: int
    mpan: str
    hub: CommsHub
    esme: ElectricityMeter


@dataclass
class World:
    clock: FixedClock
    smki: CaHierarchy
    repository: SmkiRepository
    dcc: DataCommsCompany
    wan: WanNetwork
    supplier: Party
    network_operator: Party
    homes: list[Home] = field(default_factory=list)
    supplier_top_up: OrganisationCertificate | None = None  # its prepayment top-up cert

    def home(self, index: int) -> Home:
        return self.homes[index]


def _org_certificates(
    smki: CaHierarchy, repository: SmkiRepository, keystore: Keystore, eui: Eui64, role: SmkiRole
) -> tuple[OrganisationCertificate, OrganisationCertificate]:
    issued = []
    for label, usage in (("ds", KeyUsage.DIGITAL_SIGNATURE), ("ka", KeyUsage.KEY_AGREEMENT)):
        public = (
            keystore.generate(label, usage) if label not in keystore else keystore.public_key(label)
        )
        certificate = smki.issue_organisation(
            subject_public_key=public,
            role=int(role),
            eui64=eui.value,
            usage=usage,
            not_before=START,
            not_after=START + dt.timedelta(days=3650),
        )
        repository.publish(certificate)
        issued.append(certificate)
    return issued[0], issued[1]


def _top_up_certificate(
    smki: CaHierarchy, repository: SmkiRepository, keystore: Keystore, eui: Eui64
) -> OrganisationCertificate:
    """The supplier's prepayment top-up key ("pp-ka"): a KA key of its own, distinct from its
    ordinary KA key, with its own organisation certificate (meters MAC-check UTRNs with it)."""
    usage = KeyUsage.KEY_AGREEMENT
    public = keystore.public_key(TOP_UP_LABEL) if TOP_UP_LABEL in keystore else (
        keystore.generate(TOP_UP_LABEL, usage))
    certificate = smki.issue_organisation(
        subject_public_key=public,
        role=int(SmkiRole.SUPPLIER),
        eui64=eui.value,
        usage=usage,
        not_before=START,
        not_after=START + dt.timedelta(days=3650),
    )
    repository.publish(certificate)
    return certificate


def _dcc_signing_certificate(
    smki: CaHierarchy, repository: SmkiRepository, keystore: Keystore
) -> OrganisationCertificate:
    public = keystore.generate("acb-ds", KeyUsage.DIGITAL_SIGNATURE)
    certificate = smki.issue_organisation(
        subject_public_key=public,
        role=int(SmkiRole.ACCESS_CONTROL_BROKER),
        eui64=ACB_EUI.value,
        usage=KeyUsage.DIGITAL_SIGNATURE,
        not_before=START,
        not_after=START + dt.timedelta(days=3650),
    )
    repository.publish(certificate)
    return certificate


def _remote_party(
    repository: SmkiRepository,
    eui: Eui64,
    role: TrustAnchorRole,
    at: dt.datetime,
    top_up: OrganisationCertificate | None = None,
) -> RemoteParty:
    """What a device installs as a trust anchor: keys from validated organisation certificates
    (``top_up``: the supplier's prepayment top-up certificate, kept apart from its KA one)."""
    ka = ds = None
    for certificate in repository.by_eui64(eui.value):
        if top_up is not None and certificate == top_up:
            continue
        repository.validate(certificate, at)
        if certificate.usage is KeyUsage.KEY_AGREEMENT:
            ka = certificate.public_key
        else:
            ds = certificate.public_key
    if ka is None:
        raise LookupError(f"no key-agreement certificate for {eui}")
    prepayment = None
    if top_up is not None:
        repository.validate(top_up, at)
        prepayment = top_up.public_key
    return RemoteParty(eui, role, ka, ds, prepayment)


def build_world(
    homes: int = 10,
    *,
    seed: int = 1,
    keystores: KeystoreFactory = in_memory_keystores,
    conformance: Path | None = None,
    disable_threshold: Threshold | None = None,
    progress: Callable[[int], None] | None = None,
    database_url: str = "sqlite://",
) -> World:
    """Create the parties, the DCC and ``homes`` commissioned homes."""
    clock = FixedClock(START + dt.timedelta(days=1))
    rng = random.Random(seed)

    smki = CaHierarchy.create(
        keystores("smki"),
        not_before=START,
        not_after=START + dt.timedelta(days=36500),
        device_ca_capacity=max(16, 4 * homes),
        rng=rng.randbytes,
    )
    repository = SmkiRepository(smki.ca_certificates[:1])
    for ca in smki.ca_certificates:
        repository.publish(ca)

    supplier_keys = keystores("supplier")
    network_keys = keystores("network-operator")
    acb_keys = keystores("dcc-acb")
    supplier_ds, _ = _org_certificates(
        smki, repository, supplier_keys, SUPPLIER_EUI, SmkiRole.SUPPLIER
    )
    supplier_top_up = _top_up_certificate(smki, repository, supplier_keys, SUPPLIER_EUI)
    network_ds, _ = _org_certificates(
        smki, repository, network_keys, NETWORK_OPERATOR_EUI, SmkiRole.NETWORK_OPERATOR
    )
    acb_keys.generate("acb-ka", KeyUsage.KEY_AGREEMENT)
    acb_cert = smki.issue_organisation(
        subject_public_key=acb_keys.public_key("acb-ka"),
        role=int(SmkiRole.ACCESS_CONTROL_BROKER),
        eui64=ACB_EUI.value,
        usage=KeyUsage.KEY_AGREEMENT,
        not_before=START,
        not_after=START + dt.timedelta(days=3650),
    )
    repository.publish(acb_cert)
    # The DCC's own digital-signing key (ACB role): it signs what it sends in its own name.
    acb_ds_cert = _dcc_signing_certificate(smki, repository, acb_keys)

    users = UserRegister()
    users.add(
        DccUser(SUPPLIER_EUI, "Supplier A", {"IS": UserStatus.ACTIVE}, supplier_ds.public_key)
    )
    users.add(
        DccUser(
            NETWORK_OPERATOR_EUI, "Distributor A", {"ED": UserStatus.ACTIVE}, network_ds.public_key
        )
    )

    anomaly: AnomalyDetector[object] = AnomalyDetector()
    if disable_threshold is not None:
        anomaly.set_user_threshold(SUPPLIER_EUI, "7.2", disable_threshold)

    inventory = SmartMeteringInventory()
    wan = WanNetwork()
    dcc = DataCommsCompany(
        clock=clock,
        matrix=load_matrix(conformance),
        inventory=inventory,
        users=users,
        acb=AccessControlBroker(ACB_EUI, acb_keys, "acb-ka"),
        wan=wan,
        anomaly=anomaly,
        store=SqlDccStore(database_url),
        dcc_signing=DccSigning(DccSigningKey(ACB_EUI, acb_keys, "acb-ds", acb_ds_cert.der)),
    )

    def device_directory(eui: Eui64) -> DeviceKeys | None:
        ka = ds = None
        for certificate in repository.by_eui64(eui.value):
            if not isinstance(certificate, DeviceCertificate):
                continue
            repository.validate(certificate, clock.now())
            if certificate.usage is KeyUsage.KEY_AGREEMENT:
                ka = certificate.public_key
            else:
                ds = certificate.public_key
        return DeviceKeys(ka, ds) if ka is not None and ds is not None else None

    supplier = Party("Supplier A", SUPPLIER_EUI, "IS", supplier_keys, device_directory)
    network_operator = Party(
        "Distributor A", NETWORK_OPERATOR_EUI, "ED", network_keys, device_directory
    )
    world = World(clock, smki, repository, dcc, wan, supplier, network_operator,
                  supplier_top_up=supplier_top_up)

    now = clock.now()
    anchors = [
        _remote_party(repository, SUPPLIER_EUI, TrustAnchorRole.SUPPLIER, now, supplier_top_up),
        _remote_party(repository, NETWORK_OPERATOR_EUI, TrustAnchorRole.NETWORK_OPERATOR, now),
    ]
    acb_anchor = _remote_party(repository, ACB_EUI, TrustAnchorRole.ACCESS_CONTROL_BROKER, now)
    for index in range(homes):
        world.homes.append(commission_home(world, index, keystores, anchors, acb_anchor, rng))
        if progress is not None:
            progress(index + 1)
    return world


def commission_home(
    world: World,
    index: int,
    keystores: KeystoreFactory,
    anchors: list[RemoteParty],
    acb_anchor: RemoteParty,
    rng: random.Random,
) -> Home:
    """Install a hub and an ESME, certify the meter's keys, register the MPAN, commission."""
    now = world.clock.now()
    esme_eui = Eui64.from_int(FIRST_ESME + index)
    hub_eui = Eui64.from_int(FIRST_HUB + index)
    mpan = f"{1900000000000 + index:013d}"

    meter_keys = keystores(f"esme-{esme_eui}")
    meter_keys.generate("ka", KeyUsage.KEY_AGREEMENT)
    meter_keys.generate("ds", KeyUsage.DIGITAL_SIGNATURE)
    certificates = {}
    for label, usage in (("ka", KeyUsage.KEY_AGREEMENT), ("ds", KeyUsage.DIGITAL_SIGNATURE)):
        certificate = world.smki.issue_device(
            subject_public_key=meter_keys.public_key(label),
            eui64=esme_eui.value,
            usage=usage,
            not_before=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
        world.repository.publish(certificate)
        certificates[usage] = certificate
    for ca in world.smki.ca_certificates:  # a device CA may have rolled over
        world.repository.publish(ca)

    esme = ElectricityMeter(
        esme_eui, meter_keys, world.clock, acb=acb_anchor, remote_parties=list(anchors)
    )
    hub = CommsHub(hub_eui, world.clock, acb=acb_anchor)
    hub.join(esme)
    world.wan.connect(hub_eui, hub)

    ka_certificate = certificates[KeyUsage.KEY_AGREEMENT]
    world.repository.validate(ka_certificate, now)
    world.dcc.inventory.add_device(
        DeviceRecord(
            esme_eui,
            DeviceType.ESME,
            hub_eui,
            mpan,
            ka_certificate.public_key,
            SmiStatus.COMMISSIONED,
        )
    )
    world.dcc.inventory.register(Registration(mpan, "IS", SUPPLIER_EUI, START))
    world.dcc.inventory.register(Registration(mpan, "ED", NETWORK_OPERATOR_EUI, START))
    # Some consumption before the first read: a day of a typical home, 6-14 kWh.
    esme.consume(rng.randint(6000, 14000), rng.randint(100, 900))
    return Home(index, mpan, hub, esme)

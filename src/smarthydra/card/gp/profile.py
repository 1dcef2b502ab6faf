"""Card images with GlobalPlatform: the ROM security-domain load file and the issuer SD.

:func:`gp_profile` builds a :class:`~smarthydra.card.card.CardProfile` whose personalisation
installs the issuer security domain (AID A000000151000000 by default) with the keys and
settings it is given, then moves the card to SECURED. Post-issuance load files are signed
applet packages (:mod:`smarthydra.card.package`), run restricted by
:mod:`smarthydra.card.sandbox`; the same sandbox rebuilds them at power-up.

:func:`gp_test_profile` is what ``smarthydra card serve --test-keys`` runs: the GlobalPlatform
default test key set (K-ENC = K-MAC = K-DEK = 40..4F, key version 30) and an SCP11b key pair
whose certificate sits in the ISD's certificate store (GET DATA BF21).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.card.card import CardProfile
from smarthydra.card.gp import tlv
from smarthydra.card.gp.certificates import build_gp_certificate
from smarthydra.card.gp.keystore import KeyType, SdKey
from smarthydra.card.gp.management import ISD_AID, SD_MODULE_AID, SD_PACKAGE_AID, KeyId
from smarthydra.card.gp.scp03 import I_PSEUDO_RANDOM_CHALLENGE, I_R_ENC, I_R_MAC
from smarthydra.card.gp.sd import (
    DGI_CARD_IMAGE_NUMBER,
    DGI_CERTIFICATE_STORE,
    DGI_CPLC,
    DGI_ISSUER_ID,
    DGI_KEY_DIVERSIFICATION_DATA,
    DGI_KMA_MODE,
    DGI_SCP03_I,
    DGI_SEQUENCE_COUNTER,
    LoadFileBuilder,
    LoadFileRejected,
    dgi,
    keys_dgi,
    security_domain_class,
)
from smarthydra.card.package import AppletPackage, PackageError
from smarthydra.card.registry import LifeCycle, LoadFile, Privilege, privileges_of
from smarthydra.card.runtime import CardConfig, CardManager
from smarthydra.card.sandbox import load_file_from_package, package_resolver

TEST_KEY = bytes(range(0x40, 0x50))
TEST_KVN = 0x30
SCP11_KVN = 0x01

ISD_PRIVILEGES = privileges_of(
    Privilege.SECURITY_DOMAIN, Privilege.CARD_LOCK, Privilege.CARD_TERMINATE,
    Privilege.CARD_RESET, Privilege.CVM_MANAGEMENT, Privilege.TRUSTED_PATH,
    Privilege.AUTHORIZED_MANAGEMENT, Privilege.TOKEN_VERIFICATION, Privilege.GLOBAL_DELETE,
    Privilege.GLOBAL_LOCK, Privilege.GLOBAL_REGISTRY, Privilege.RECEIPT_GENERATION,
)


def package_load_file(aid: bytes, block: bytes) -> LoadFile:
    """The default LOAD builder: decode the applet package and load it restricted."""
    try:
        package = AppletPackage.decode(block)
        if package.aid != aid:
            raise LoadFileRejected(
                f"package AID {package.aid.hex().upper()} is not {aid.hex().upper()}")
        return load_file_from_package(package)
    except PackageError as exc:
        raise LoadFileRejected(str(exc)) from None


def gp_test_keys(kvn: int = TEST_KVN, key: bytes = TEST_KEY) -> list[SdKey]:
    return [SdKey(kvn, kid, KeyType.AES, key) for kid in (KeyId.ENC, KeyId.MAC, KeyId.DEK)]


def cplc(serial: bytes) -> bytes:
    """42 bytes of card production life cycle data (fabricator, type, serial...)."""
    return (bytes.fromhex("4090") + bytes.fromhex("5348") + bytes.fromhex("0001")
            + bytes.fromhex("4090") + b"\x26\x01" + b"\x00\x01" + serial[:4].rjust(4, b"\0")
            + bytes(26))


@dataclass(frozen=True)
class IsdSetup:
    """How the issuer security domain is personalised."""

    aid: bytes = ISD_AID
    keys: Sequence[SdKey] = field(default_factory=gp_test_keys)
    privileges: bytes = ISD_PRIVILEGES
    scp03_i: int = I_PSEUDO_RANDOM_CHALLENGE | I_R_MAC | I_R_ENC
    issuer_id: bytes = bytes.fromhex("5348594452")  # "SHYDR"
    card_image_number: bytes = bytes.fromhex("0000000001")
    certificate_store: bytes = b""
    kma_mode: bool = False
    life_cycle: int = LifeCycle.SECURED
    sequence_counter: int = 0
    key_diversification_data: bytes = bytes(10)

    def personalisation(self) -> bytes:
        data = dgi(DGI_SCP03_I, bytes((self.scp03_i,)))
        data += dgi(DGI_ISSUER_ID, self.issuer_id) + dgi(DGI_CARD_IMAGE_NUMBER,
                                                         self.card_image_number)
        data += dgi(DGI_CPLC, cplc(self.card_image_number[-4:]))
        if self.certificate_store:
            data += dgi(DGI_CERTIFICATE_STORE, self.certificate_store)
        if self.sequence_counter:
            data += dgi(DGI_SEQUENCE_COUNTER, self.sequence_counter.to_bytes(3, "big"))
        if any(self.key_diversification_data):
            data += dgi(DGI_KEY_DIVERSIFICATION_DATA, self.key_diversification_data)
        if self.kma_mode:
            data += dgi(DGI_KMA_MODE, b"\x01")
        by_version: dict[tuple[int, KeyType], list[SdKey]] = {}
        for key in self.keys:
            by_version.setdefault((key.kvn, key.key_type), []).append(key)
        for group in by_version.values():
            group.sort(key=lambda k: k.kid)
            run: list[SdKey] = []
            for key in group:  # consecutive identifiers travel in one DGI
                if run and key.kid != run[-1].kid + 1:
                    data += keys_dgi(run)
                    run = []
                run.append(key)
            data += keys_dgi(run)
        return data


def certificate_store(sd_key: ec.EllipticCurvePrivateKey,
                      ca_key: ec.EllipticCurvePrivateKey | None = None,
                      kid: int = KeyId.SCP11B, kvn: int = SCP11_KVN) -> bytes:
    """BF21 with one GP certificate of PK.SD.ECKA, signed by ``ca_key`` (default: itself)."""
    cert = build_gp_certificate(
        serial=b"\x01", ca_kloc_id=b"\x53\x48\x59", subject_id=ISD_AID,
        public_key=sd_key.public_key(), signer=ca_key or sd_key, key_usage=b"\x00\x80")
    return tlv.encode(0xBF21, cert)


def gp_profile(
    isd: IsdSetup | None = None,
    *,
    name: str = "gp",
    load_files: Sequence[LoadFile] = (),
    install: Sequence[tuple[bytes, bytes, bytes, bytes]] = (),
    builder: LoadFileBuilder = package_load_file,
    config: CardConfig | None = None,
) -> CardProfile:
    """A GlobalPlatform card: SD load file, ISD, optional ROM load files and instances.

    ``install``: (load file AID, module AID, instance AID, privileges) of ROM applets to
    install at personalisation, associated with the ISD.
    """
    setup = isd or IsdSetup()
    sd_load_file = LoadFile(SD_PACKAGE_AID, {SD_MODULE_AID: security_domain_class(builder)},
                            "security-domain")

    def personalize(manager: CardManager) -> None:
        if manager.entry(setup.aid) is not None:
            return
        manager.install(SD_PACKAGE_AID, SD_MODULE_AID, setup.aid, privileges=setup.privileges,
                        life_cycle=LifeCycle.PERSONALIZED)
        manager.forward_data(setup.aid, setup.personalisation())
        for lf_aid, module, instance, privileges in install:
            manager.install(lf_aid, module, instance, privileges=privileges,
                            associated_sd=setup.aid)
        manager.set_card_life_cycle(setup.life_cycle)

    return CardProfile(name, (sd_load_file, *load_files), personalize,
                       config or CardConfig(), package_resolver())


def gp_test_profile(scp11_key: ec.EllipticCurvePrivateKey | None = None,
                 load_files: Sequence[LoadFile] = ()) -> CardProfile:
    """The ``--test-keys`` card: GP test keys (KVN 30) and an SCP11b key (KVN 01, KID 13)."""
    key = scp11_key or ec.generate_private_key(ec.SECP256R1())
    setup = IsdSetup(
        keys=[*gp_test_keys(), SdKey.ec_private(SCP11_KVN, KeyId.SCP11B, key)],
        certificate_store=certificate_store(key),
    )
    return gp_profile(setup, name="gp-test", load_files=load_files)

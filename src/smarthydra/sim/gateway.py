"""A DUIS gateway for a simulated world: XML-signing certificates for the DCC and its users."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.dcc.gateway import (
    DEFAULT_MAX_BODY,
    XML_SIGNING_LABEL,
    DccGateway,
    GatewayConfigError,
    default_schema_dir,
)
from smarthydra.duis.xml import DuisSchema, SchemaNotFound
from smarthydra.duis.xmldsig import XmlSigner, repository_lookup
from smarthydra.eui import Eui64
from smarthydra.pki.profile import SmkiRole
from smarthydra.sim.world import ACB_EUI, START, World, in_memory_keystores


@dataclass(frozen=True)
class XmlSigningSetup:
    """XML-signing certificates issued for a simulated world: the DCC's and each user's."""

    dcc: XmlSigner
    users: dict[Eui64, XmlSigner]


def provision_xml_signing(world: World, dcc_keystore: Keystore | None = None) -> XmlSigningSetup:
    """Issue SMKI XML-signing certificates (0x89 for the DCC, 0x87 per user) from the world's CA.

    Users' keys are made in their own keystores under ``xml-sign``; the DCC's in
    ``dcc_keystore`` (a fresh in-memory store by default). All are published in the repository.
    """

    def issue(keystore: Keystore, eui: Eui64, role: SmkiRole) -> XmlSigner:
        public = (
            keystore.public_key(XML_SIGNING_LABEL)
            if XML_SIGNING_LABEL in keystore
            else keystore.generate(XML_SIGNING_LABEL, KeyUsage.DIGITAL_SIGNATURE)
        )
        certificate = world.smki.issue_organisation(
            subject_public_key=public,
            role=int(role),
            eui64=eui.value,
            usage=KeyUsage.DIGITAL_SIGNATURE,
            not_before=START,
            not_after=START + dt.timedelta(days=3650),
        )
        world.repository.publish(certificate)
        return XmlSigner(keystore, XML_SIGNING_LABEL, certificate)

    dcc = issue(dcc_keystore or in_memory_keystores("dcc-xml"), ACB_EUI, SmkiRole.XML_SIGNING_DCC)
    users = {
        party.eui: issue(party.keystore, party.eui, SmkiRole.XML_SIGNING_USER)
        for party in (world.supplier, world.network_operator)
    }
    return XmlSigningSetup(dcc, users)


def gateway_for_world(
    world: World, *, schema_dir: Path | None = None, max_body_bytes: int = DEFAULT_MAX_BODY
) -> tuple[DccGateway, XmlSigningSetup]:
    """A gateway for a simulated world, with freshly issued XML-signing certificates."""
    try:
        schema = DuisSchema.load(schema_dir or default_schema_dir())
    except SchemaNotFound as exc:
        raise GatewayConfigError(str(exc)) from None
    setup = provision_xml_signing(world)
    gateway = DccGateway(
        dcc=world.dcc,
        schema=schema,
        signer=setup.dcc,
        certificates=repository_lookup(world.repository, world.clock),
        max_body_bytes=max_body_bytes,
    )
    return gateway, setup

"""Our organisation certificates (DS, KA, prepayment top-up KA) carry the same fields, in the
same order and criticality, as the real ones inside the RTDS CS02b commands."""

from __future__ import annotations

import datetime as dt

from asn1crypto import x509

from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.gbcs.envelope import decode_message
from smarthydra.pki.certificates import OrganisationCertificate, parse_certificate
from smarthydra.pki.credentials import CellUsage, decode_command
from smarthydra.pki.hierarchy import CaHierarchy
from tests.conftest import conformance_path

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _layout(der: bytes) -> tuple[object, ...]:
    tbs = x509.Certificate.load(der)["tbs_certificate"]
    return (
        tuple(a["type"].dotted for rdn in tbs["subject"].chosen for a in rdn),
        tuple((e["extn_id"].dotted, bool(e["critical"].native)) for e in tbs["extensions"]),
        len(tbs["serial_number"].contents),
    )


def test_supplier_ds_ka_and_top_up_match_the_rtds() -> None:
    path = conformance_path(
        "gbcs",
        "rtds-4.5.0",
        "6.15.1_CS02bSupplierBySupplier",
        "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX",
    )
    message = decode_message(bytes.fromhex("".join(path.read_text().split())))
    command = decode_command(message.payload)
    hierarchy = CaHierarchy.create(
        SoftKeystore(None, b""),
        not_before=T0,
        not_after=T0 + dt.timedelta(days=3650),
        device_ca_capacity=1,
    )
    assert len(command.replacements) == 3
    for replacement in command.replacements:
        real = parse_certificate(replacement.certificate)
        assert isinstance(real, OrganisationCertificate)
        ours = hierarchy.issue_organisation(
            subject_public_key=SoftKeystore(None, b"").generate("k", real.usage),
            role=real.role,
            eui64=real.eui64,
            usage=real.usage,
            not_before=T0,
            not_after=T0 + dt.timedelta(days=365),
            common_name=real.common_name,
        )
        assert _layout(ours.der) == _layout(real.der)
        assert ours.policies == real.policies
        top_up = replacement.target.cell_usage is CellUsage.PREPAYMENT_TOP_UP
        assert real.usage is (KeyUsage.KEY_AGREEMENT if top_up else real.usage)

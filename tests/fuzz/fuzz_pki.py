"""atheris harness: SMKI certificates (DER and PEM), CS02b credential payloads, CRLs.

Run: ``python -m tests.fuzz.fuzz_pki -runs=100000`` (from the repository root).
"""

from __future__ import annotations

import datetime as dt
import sys

from tests.fuzz.harness import Target, main, splice

INSTRUMENT = ("smarthydra.pki",)


def targets() -> list[Target]:
    from smarthydra.pki.certificates import (
        CertificateError,
        load_pem_bundle,
        parse_certificate,
    )
    from smarthydra.pki.credentials import (
        AuthorisingControl,
        CellId,
        CellKeyUsage,
        CellRole,
        CredentialsError,
        CredentialsReplacementMode,
        Replacement,
        UpdateSecurityCredentials,
        decode_alert,
        decode_command,
        decode_response,
        encode_command,
    )
    from smarthydra.pki.hierarchy import parse_crl
    from smarthydra.sim.world import START, build_world

    world = build_world(homes=1, seed=11)
    organisation_ca = world.smki.organisation_ca
    certificate = world.repository.by_role(2)[0] if world.repository.by_role(2) else organisation_ca
    world.repository.revoke(certificate.serial, START)
    crl = world.repository.crl(world.smki.organisation_signer(), START, START + dt.timedelta(days=7))
    command = encode_command(UpdateSecurityCredentials(
        AuthorisingControl(CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER, 5, new_floor=7),
        (Replacement(certificate.der,
                     CellId(int(CellRole.SUPPLIER), CellKeyUsage.DIGITAL_SIGNATURE)),),
        (organisation_ca.der,),
        dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    ))
    pem = certificate.to_pem().encode()

    def certificate_round_trip(der: bytes) -> None:
        parsed = parse_certificate(der)
        if parse_certificate(parsed.der) != parsed:
            raise AssertionError("certificate does not re-parse to itself")

    def command_round_trip(payload: bytes) -> None:
        decoded = decode_command(payload)
        if decode_command(encode_command(decoded)) != decoded:
            raise AssertionError("CS02b command does not round-trip")

    return [
        Target("parse_certificate", parse_certificate, (CertificateError,)),
        Target("parse_certificate (spliced DER)",
               lambda b: certificate_round_trip(splice(certificate.der, b)), (CertificateError,)),
        Target("parse_certificate (spliced PEM)", lambda b: parse_certificate(splice(pem, b)),
               (CertificateError,)),
        Target("load_pem_bundle (spliced)", lambda b: load_pem_bundle(splice(pem + pem, b)),
               (CertificateError,)),
        Target("CS02b decode_command", decode_command, (CredentialsError,)),
        Target("CS02b decode_command (spliced)", lambda b: command_round_trip(splice(command, b)),
               (CredentialsError,)),
        Target("CS02b decode_response", decode_response, (CredentialsError,)),
        Target("CS02b decode_alert", decode_alert, (CredentialsError,)),
        Target("parse_crl (spliced)", lambda b: parse_crl(splice(crl, b), organisation_ca),
               (CertificateError,)),
    ]


if __name__ == "__main__":
    main(sys.modules[__name__])

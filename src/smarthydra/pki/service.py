"""The SMKI repository as an HTTP service (FastAPI): query certificates, download the CRL.

``GET /certificates?eui64=&role=&usage=`` lists matching certificates (JSON; at least one
filter); ``GET /certificates/{serial}`` one certificate by hexadecimal serial (JSON, or DER with
``Accept: application/pkix-cert`` or ``?format=der``); ``GET /crl`` the current CRL (DER,
``application/pkix-crl``), signed through the organisation CA's keystore. Bad parameters get a
400 naming the parameter, unknown serials a 404; nothing here changes the repository.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import Response

from smarthydra.crypto.keystore import KeyUsage
from smarthydra.eui import Eui64, InvalidEui64
from smarthydra.pki import profile
from smarthydra.pki.certificates import (
    AnyCertificate,
    CaCertificate,
    DeviceCertificate,
    OrganisationCertificate,
)
from smarthydra.pki.hierarchy import CertificateNotFound, SmkiRepository

CrlSource = Callable[[], bytes]


def describe(certificate: AnyCertificate, repository: SmkiRepository) -> dict[str, object]:
    """The JSON view of a certificate (PEM included)."""
    out: dict[str, object] = {
        "serial": f"{certificate.serial:X}",
        "issuer": certificate.issuer,
        "not_before": certificate.not_before.isoformat(),
        "not_after": certificate.not_after.isoformat(),
        "subject_key_id": certificate.subject_key_id.hex().upper(),
        "revoked": repository.is_revoked(certificate.serial),
        "pem": certificate.to_pem(),
    }
    if isinstance(certificate, OrganisationCertificate):
        out |= {
            "kind": "organisation",
            "role": profile.role_code(certificate.role),
            "role_name": certificate.role_name,
            "eui64": certificate.eui64.hex().upper(),
            "usage": certificate.usage.value,
        }
    elif isinstance(certificate, DeviceCertificate):
        out |= {
            "kind": "device",
            "eui64": certificate.eui64.hex().upper(),
            "usage": certificate.usage.value,
        }
    elif isinstance(certificate, CaCertificate):
        out |= {"kind": "ca", "subject": certificate.subject}
    return out


def create_app(repository: SmkiRepository, crl: CrlSource) -> FastAPI:
    app = FastAPI(title="SMKI repository", version="1")

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "certificates": len(repository.certificates())}

    @app.get("/certificates")
    def query(
        eui64: str | None = Query(None, description="16 hex digits or hyphenated"),
        role: str | None = Query(None, description="2-hex-digit SMKI role code, e.g. 02"),
        usage: str | None = Query(None, description="ds or ka"),
    ) -> list[dict[str, object]]:
        if eui64 is None and role is None:
            raise HTTPException(400, "give eui64 or role")
        role_value: int | None = None
        if role is not None:
            try:
                role_value = int(role, 16)
            except ValueError:
                raise HTTPException(400, f"role must be 2 hex digits, got {role!r}") from None
            if not 0 <= role_value <= 0xFF:
                raise HTTPException(400, f"role must be 2 hex digits, got {role!r}")
        key_usage: KeyUsage | None = None
        if usage is not None:
            try:
                key_usage = KeyUsage(usage)
            except ValueError:
                raise HTTPException(400, "usage must be ds or ka") from None
        found: list[AnyCertificate]
        if eui64 is not None:
            try:
                eui = Eui64.parse(eui64)
            except InvalidEui64 as exc:
                raise HTTPException(400, str(exc)) from None
            found = list(repository.by_eui64(eui.value, usage=key_usage, role=role_value))
        else:
            assert role_value is not None
            found = [
                c
                for c in repository.by_role(role_value)
                if key_usage is None or c.usage is key_usage
            ]
        return [describe(c, repository) for c in found]

    @app.get("/certificates/{serial}", response_model=None)
    def by_serial(
        serial: str, request: Request, format: str | None = None
    ) -> Response | dict[str, object]:
        try:
            value = int(serial, 16)
        except ValueError:
            raise HTTPException(400, f"serial must be hexadecimal, got {serial!r}") from None
        try:
            certificate = repository.by_serial(value)
        except CertificateNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        wants_der = format == "der" or "application/pkix-cert" in request.headers.get("accept", "")
        if wants_der:
            return Response(certificate.der, media_type="application/pkix-cert")
        return describe(certificate, repository)

    @app.get("/crl")
    def current_crl() -> Response:
        return Response(crl(), media_type="application/pkix-crl")

    return app

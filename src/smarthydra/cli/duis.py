"""``smarthydra duis send``: sign a DUIS request with a user's XML-signing key and send it."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

app = typer.Typer(no_args_is_help=True, help="DUIS: service requests to a DCC.")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def endpoint_url(url: str, command_variant: int) -> str:
    """A base URL gets the endpoint the command variant belongs at (serviceT for CV 4, serviceN
    for CV 8, serviceS otherwise); a URL naming an endpoint is used as given."""
    if "/api/v1/" in url:
        return url
    name = {4: "serviceT", 8: "serviceN"}.get(command_variant, "serviceS")
    return f"{url.rstrip('/')}/api/v1/{name}"


@app.command("send")
def send(
    file: Path = typer.Argument(..., help="the DUIS request (XML; any old signature is replaced)"),
    key: Path = typer.Option(..., help="the user's XML-signing private key (PEM or DER)"),
    cert: Path = typer.Option(..., help="the user's SMKI XML-signing certificate (PEM or DER)"),
    url: str = typer.Option(..., help="the DCC: a base URL or a /api/v1/service? endpoint"),
    ca: Path | None = typer.Option(None, help="CA for the DCC's TLS certificate"),
    tls_cert: Path | None = typer.Option(None, help="TLS client certificate (mutual TLS)"),
    tls_key: Path | None = typer.Option(None, help="TLS client key (mutual TLS)"),
    timeout: float = typer.Option(30.0, min=0.1),
) -> None:
    """Sign FILE and POST it; print the DCC's signed response. Exit 1 on an error code."""
    import httpx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from smarthydra.crypto.keystore import KeyUsage
    from smarthydra.crypto.softstore import SoftKeystore
    from smarthydra.duis.xml import DuisXmlError, parse_xml, read_response
    from smarthydra.duis.xmldsig import DS_NS, XmlSigner
    from smarthydra.pki.certificates import (
        CertificateError,
        OrganisationCertificate,
        parse_certificate,
    )

    try:
        root = parse_xml(file.read_bytes())
        key_bytes = key.read_bytes()
        cert_bytes = cert.read_bytes()
    except OSError as exc:
        _fail(str(exc))
    except DuisXmlError as exc:
        _fail(f"{file}: {exc}")
    try:
        private = (
            serialization.load_pem_private_key(key_bytes, None)
            if key_bytes.lstrip().startswith(b"-----")
            else serialization.load_der_private_key(key_bytes, None)
        )
    except (ValueError, TypeError) as exc:
        _fail(f"{key}: not a private key: {exc}")
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        _fail(f"{key}: not an EC private key")
    try:
        certificate = parse_certificate(cert_bytes)
    except CertificateError as exc:
        _fail(f"{cert}: {exc}")
    if not isinstance(certificate, OrganisationCertificate):
        _fail(f"{cert}: not an SMKI organisation certificate")
    for old in root.findall(f"{{{DS_NS}}}Signature"):
        root.remove(old)
    keystore = SoftKeystore(None, passphrase=b"duis-send")
    try:
        keystore.import_private_key("xml-sign", private, KeyUsage.DIGITAL_SIGNATURE)
    except Exception as exc:  # e.g. a key on another curve
        _fail(f"{key}: {exc}")
    document = XmlSigner(keystore, "xml-sign", certificate).sign_bytes(root)

    cv_element = root.find(".//{http://www.dccinterface.co.uk/ServiceUserGateway}CommandVariant")
    cv_text = (cv_element.text or "").strip() if cv_element is not None else ""
    target = endpoint_url(url, int(cv_text) if (cv_text.isascii() and cv_text.isdigit()) else 1)
    client_cert = (str(tls_cert), str(tls_key)) if tls_cert and tls_key else None
    try:
        with httpx.Client(
            timeout=timeout, verify=str(ca) if ca else True, cert=client_cert
        ) as client:
            reply = client.post(
                target, content=document, headers={"content-type": "application/xml"}
            )
    except httpx.HTTPError as exc:
        _fail(f"{target}: {exc}")
    typer.echo(reply.text)
    if reply.headers.get("content-type", "").startswith("application/xml") and reply.content:
        try:
            response = read_response(parse_xml(reply.content))
        except DuisXmlError as exc:
            _fail(f"the DCC's answer is not a DUIS response: {exc}", code=1)
        typer.echo(f"ResponseCode {response.code_text}", err=True)
        if not response.code_text.startswith("I"):
            raise typer.Exit(1)
    elif reply.status_code >= 400:
        _fail(f"HTTP {reply.status_code}", code=1)

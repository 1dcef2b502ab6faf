"""DUIS rates: XMLDSig sign+verify against raw ECDSA sign+verify, and whole gateway requests.

- ``raw_ecdsa``: ``cryptography`` ECDSA-SHA256 sign then verify, the baseline;
- ``xmldsig``: build a 4.1.1 request, sign it through a keystore, parse, schema-validate, verify;
- ``gateway_in_process``: signed 4.1.1 XML into :class:`DccGateway` (schema, XMLDSig, DCC checks,
  GBCS, ACB MAC, the simulated meter's MAC'd answer, the DCC's signed XML response);
- ``gateway_https``: the same over loopback HTTPS with mutual TLS (uvicorn + httpx keep-alive);
- ``gateway_end_to_end_durable``: the dccboxed profile on a SQLite file: signed XML in, committed
  and acknowledged (I99), then dispatched (GBCS, ACB MAC, queued for the WAN), beside
  ``ecdsa_verify_per_s`` and against the GB national average of 850 messages a second.

The gateway parts need the DUIS schema from the conformance data and are skipped without it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import DuisSchema, SchemaNotFound, build_request, parse_xml
from smarthydra.duis.xmldsig import XmlSigner, static_lookup, verify_enveloped
from smarthydra.eui import Eui64

CONFORMANCE = Path(
    os.environ.get(
        "SMARTHYDRA_CONFORMANCE",
        Path(__file__).resolve().parents[1].parent / "shared" / "conformance",
    )
)
NATIONAL_AVERAGE_PER_S = 850  # GB DCC average messages per second, for the ratio


def _rate(operation: Callable[[], object], seconds: float) -> float:
    operation()
    count = 0
    start = time.perf_counter()
    while True:
        operation()
        count += 1
        now = time.perf_counter()
        if now - start >= seconds:
            return count / (now - start)


def _xmldsig(seconds: float, schema: DuisSchema | None) -> dict[str, float]:
    from smarthydra.sim.world import START, build_world

    world = build_world(1, seed=11)
    keystore = SoftKeystore(None, passphrase=b"bench")
    certificate = world.smki.issue_organisation(
        subject_public_key=keystore.generate("xml", KeyUsage.DIGITAL_SIGNATURE),
        role=0x87,
        eui64=world.supplier.eui.value,
        usage=KeyUsage.DIGITAL_SIGNATURE,
        not_before=START,
        not_after=START + dt.timedelta(days=30),
    )
    signer = XmlSigner(keystore, "xml", certificate)
    lookup = static_lookup([certificate])
    rid = RequestId(world.supplier.eui, Eui64.parse("00DB1234567890A0"), 1)

    def sign_verify() -> None:
        data = signer.sign_bytes(build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"))
        root = parse_xml(data)
        if schema is not None:
            schema.validate(root)
        verify_enveloped(root, lookup)

    return {"sign_verify_per_s": _rate(sign_verify, seconds)}


def _tls_files(folder: Path) -> dict[str, Path]:
    def issue(
        cn: str,
        key: ec.EllipticCurvePrivateKey,
        ca_key: ec.EllipticCurvePrivateKey,
        issuer: str,
        ca: bool,
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if cn == "127.0.0.1":
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256())

    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("ca", "server", "client")}
    certificates = {
        "ca": issue("bench CA", keys["ca"], keys["ca"], "bench CA", True),
        "server": issue("127.0.0.1", keys["server"], keys["ca"], "bench CA", False),
        "client": issue("bench client", keys["client"], keys["ca"], "bench CA", False),
    }
    paths: dict[str, Path] = {}
    for name in keys:
        paths[f"{name}_cert"] = folder / f"{name}.pem"
        paths[f"{name}_cert"].write_bytes(
            certificates[name].public_bytes(serialization.Encoding.PEM)
        )
        paths[f"{name}_key"] = folder / f"{name}.key"
        paths[f"{name}_key"].write_bytes(
            keys[name].private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths


def _gateway(seconds: float, schema_dir: Path) -> dict[str, float]:
    import httpx
    import uvicorn

    from smarthydra.dcc.gateway import Endpoint, server_config
    from smarthydra.sim.gateway import gateway_for_world
    from smarthydra.sim.world import build_world

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        world = build_world(
            4, seed=12, conformance=CONFORMANCE, database_url=f"sqlite:///{folder / 'dcc.db'}"
        )
        gateway, signing = gateway_for_world(world, schema_dir=schema_dir)
        signer = signing.users[world.supplier.eui]
        homes = [home.esme.eui for home in world.homes]

        def body(index: int) -> bytes:
            rid = world.supplier.next_request_id(homes[index % len(homes)])
            return signer.sign_bytes(
                build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
            )

        counter = [0]

        def in_process() -> None:
            counter[0] += 1
            reply = gateway.handle(Endpoint.SEND, body(counter[0]))
            if reply.status != 200:
                raise RuntimeError(reply.detail)

        results = {"in_process_per_s": _rate(in_process, seconds)}

        tls = _tls_files(folder)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        server = uvicorn.Server(
            server_config(
                gateway,
                "127.0.0.1",
                port,
                tls["server_cert"],
                tls["server_key"],
                tls["ca_cert"],
                insecure_http=False,
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        context = ssl.create_default_context(cafile=str(tls["ca_cert"]))
        context.load_cert_chain(str(tls["client_cert"]), str(tls["client_key"]))
        try:
            with httpx.Client(verify=context, timeout=10) as client:

                def over_https() -> None:
                    counter[0] += 1
                    response = client.post(
                        f"https://127.0.0.1:{port}/api/v1/serviceS", content=body(counter[0])
                    )
                    if response.status_code != 200:
                        raise RuntimeError(response.text)

                results["https_per_s"] = _rate(over_https, seconds)
        finally:
            server.should_exit = True
            thread.join(10)
    return results


def _durable(seconds: float, folder: Path) -> dict[str, float]:
    """The dccboxed profile on a SQLite file: signed 4.1.1 XML in (schema, XMLDSig, checks,
    committed, I99 signed back), then dispatch (GBCS, ACB MAC, queued for the WAN). Requests
    are signed beforehand: signing is the user's cost, not the DCC's."""
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    from smarthydra.dcc.dccboxed import SUPPLIER, build_dccboxed
    from smarthydra.dcc.gateway import Endpoint
    from smarthydra.pki.certificates import OrganisationCertificate, parse_certificate

    profile = build_dccboxed(CONFORMANCE, f"sqlite:///{folder / 'bench.sqlite3'}")
    smki = CONFORMANCE / "smki"
    private = load_der_private_key((smki / "xml-sign-90B3D51F30010000-ds.key").read_bytes(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    keystore = SoftKeystore(None, passphrase=b"bench")
    keystore.import_private_key("xml", private, KeyUsage.DIGITAL_SIGNATURE)
    certificate = parse_certificate((smki / "xml-sign-90B3D51F30010000-ds.pem").read_bytes())
    assert isinstance(certificate, OrganisationCertificate)
    signer = XmlSigner(keystore, "xml", certificate)
    esme = Eui64.parse("00DB1234567890A0")
    count = max(50, int(seconds * 400))
    documents = [
        signer.sign_bytes(
            build_request(RequestId(SUPPLIER, esme, 10 + i), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
        )
        for i in range(count)
    ]
    start = time.perf_counter()
    for document in documents:
        reply = profile.gateway.handle(Endpoint.SEND, document)
        if reply.status != 200:
            raise RuntimeError(f"bench request refused: {reply.detail}")
    while profile.dcc.dispatch_accepted(limit=500):
        pass
    elapsed = time.perf_counter() - start
    if len(profile.store.queued_frames(limit=count + 1)) != count:
        raise RuntimeError("not every request reached the WAN queue")
    return {"end_to_end_durable_per_s": count / elapsed}


def run(quick: bool) -> dict[str, object]:
    seconds = 0.3 if quick else 2.0
    key = ec.generate_private_key(ec.SECP256R1())
    message = bytes(600)

    def raw_sign_verify() -> None:
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
        key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))

    baseline = _rate(raw_sign_verify, seconds)
    schema_dir = CONFORMANCE / "duis"
    try:
        schema: DuisSchema | None = DuisSchema.load(schema_dir)
    except SchemaNotFound:
        schema = None
    xmldsig = _xmldsig(seconds, schema)
    result: dict[str, object] = {
        "raw_ecdsa_sign_verify_per_s": round(baseline, 1),
        "xmldsig_sign_verify_per_s": round(xmldsig["sign_verify_per_s"], 1),
        "xmldsig_includes_schema_validation": schema is not None,
        "xmldsig_vs_raw_ratio": round(xmldsig["sign_verify_per_s"] / baseline, 3),
    }
    if schema is None:
        result["gateway"] = f"skipped: DUIS schema not found in {schema_dir}"
        return result
    verify_key = key.public_key()
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    verify_rate = _rate(lambda: verify_key.verify(signature, message, ec.ECDSA(hashes.SHA256())), seconds)
    result["ecdsa_verify_per_s"] = round(verify_rate, 1)
    gateway = _gateway(seconds, schema_dir)
    if (CONFORMANCE / "smki").is_dir():
        with tempfile.TemporaryDirectory() as folder:
            gateway.update(_durable(seconds, Path(folder)))
    for name, rate in gateway.items():
        result[f"gateway_{name}"] = round(rate, 1)
        result[f"gateway_{name}_vs_national_average"] = round(rate / NATIONAL_AVERAGE_PER_S, 3)
        result[f"gateway_{name}_vs_raw_ecdsa"] = round(rate / baseline, 3)
    return result

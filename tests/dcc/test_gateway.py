"""The DUIS gateway: the sans-I/O core against build_world's DCC, then real HTTPS with mutual TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signxml import SignatureConfiguration, XMLVerifier

from smarthydra.dcc.anomaly import Threshold
from smarthydra.dcc.gateway import (
    DETAIL_HEADER,
    PROBLEM_CONTENT_TYPE,
    DccGateway,
    Endpoint,
    GatewayConfigError,
    GatewayReply,
    create_app,
    server_config,
)
from smarthydra.duis.codes import DccAlertCode, ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import (
    DuisResponse,
    build_request,
    build_signed_precommand_request,
    parse_xml,
    read_response,
)
from smarthydra.duis.xmldsig import repository_lookup, verify_enveloped
from smarthydra.gbcs.builder import sign_precommand
from smarthydra.premises.esme import SupplyState
from smarthydra.sim.gateway import XmlSigningSetup, gateway_for_world
from smarthydra.sim.world import World, build_world
from tests.conftest import conformance_path


@dataclass
class Setup:
    world: World
    gateway: DccGateway
    signing: XmlSigningSetup

    def sign(self, root: object, who: str = "supplier") -> bytes:
        party = self.world.supplier if who == "supplier" else self.world.network_operator
        return self.signing.users[party.eui].sign_bytes(root)  # type: ignore[arg-type]

    def rid(self, home: int = 0) -> RequestId:
        return self.world.supplier.next_request_id(self.world.home(home).esme.eui)


def _setup(homes: int = 2, database: Path | None = None) -> Setup:
    schema_dir = conformance_path("duis", "duis-5.4.xsd").parent
    world = build_world(
        homes,
        seed=7,
        conformance=schema_dir.parent,
        disable_threshold=Threshold(3, dt.timedelta(days=1)),
        # A server thread is not the thread that built the world: in-memory SQLite is
        # per-connection, so served worlds keep their DCC store in a file.
        database_url=f"sqlite:///{database}" if database else "sqlite://",
    )
    gateway, signing = gateway_for_world(world, schema_dir=schema_dir, max_body_bytes=64 * 1024)
    return Setup(world, gateway, signing)


@pytest.fixture
def setup() -> Setup:
    return _setup()


@pytest.fixture
def threaded_setup(tmp_path: Path) -> Setup:
    return _setup(database=tmp_path / "dcc.db")


def _dcc_answer(setup: Setup, reply: GatewayReply) -> DuisResponse:
    """Check the reply is DUIS XML that validates and is signed by the DCC; return it read."""
    assert reply.content_type == "application/xml", reply
    root = parse_xml(reply.body)
    setup.gateway.schema.validate(root)
    verified = verify_enveloped(root, repository_lookup(setup.world.repository, setup.world.clock))
    assert verified.certificate == setup.signing.dcc.certificate
    return read_response(root)


# --- the sans-I/O core --------------------------------------------------------------------------


def test_read_4_1_1_returns_the_meters_signed_response(setup: Setup) -> None:
    rid = setup.rid()
    reply = setup.gateway.handle(
        Endpoint.SEND,
        setup.sign(build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")),
    )
    assert reply.status == 200
    answer = _dcc_answer(setup, reply)
    assert (answer.code, answer.request_id, answer.service_reference) == (
        ResponseCode.SUCCESS,
        rid,
        "4.1",
    )
    assert answer.response_id == RequestId(rid.target, rid.originator, rid.counter)
    assert answer.gbcs is not None
    # the GBCS is the meter's MAC'd response, which the supplier can check and decrypt
    message = setup.world.supplier._check_response(answer.gbcs, rid.target, rid.counter)
    assert message.originator == rid.target.value


def test_disable_supply_7_2_transform_sign_send(setup: Setup) -> None:
    rid = setup.rid()
    transformed = setup.gateway.handle(
        Endpoint.TRANSFORM, setup.sign(build_request(rid, CommandVariant.CRITICAL_TRANSFORM, "7.2"))
    )
    precommand = _dcc_answer(setup, transformed)
    assert precommand.code is ResponseCode.SUCCESS and precommand.precommand is not None
    assert setup.world.home(0).esme.supply is SupplyState.ENABLED
    signed = sign_precommand(
        precommand.precommand, keystore=setup.world.supplier.keystore, label="ds"
    )
    sent = setup.gateway.handle(
        Endpoint.SEND,
        setup.sign(
            build_signed_precommand_request(
                rid, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, "7.2", signed.wire()
            )
        ),
    )
    answer = _dcc_answer(setup, sent)
    assert answer.code is ResponseCode.SUCCESS and answer.gbcs is not None
    assert setup.world.home(0).esme.supply is SupplyState.DISABLED
    assert setup.world.home(1).esme.supply is SupplyState.ENABLED


@pytest.mark.parametrize(
    ("endpoint", "cv", "srv"),
    [
        (Endpoint.SEND, CommandVariant.CRITICAL_TRANSFORM, "7.2"),
        (Endpoint.SEND, CommandVariant.NON_DEVICE, "8.2"),
        (Endpoint.TRANSFORM, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"),
        (Endpoint.NON_DEVICE, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"),
        (Endpoint.NON_DEVICE, CommandVariant.CRITICAL_TRANSFORM, "7.2"),
    ],
)
def test_wrong_url_for_command_variant_is_e13(
    setup: Setup, endpoint: Endpoint, cv: CommandVariant, srv: str
) -> None:
    parameters: dict[str, object] = {"MPxN": setup.world.home(0).mpan} if srv == "8.2" else {}
    reply = setup.gateway.handle(
        endpoint, setup.sign(build_request(setup.rid(), cv, srv, parameters))
    )
    assert reply.status == 200, reply.detail
    assert _dcc_answer(setup, reply).code is ResponseCode.WRONG_URL_FOR_COMMAND_VARIANT
    assert endpoint.path in reply.detail


def test_non_device_service_is_e11_for_now(setup: Setup) -> None:
    reply = setup.gateway.handle(
        Endpoint.NON_DEVICE,
        setup.sign(
            build_request(
                setup.rid(), CommandVariant.NON_DEVICE, "8.2", {"MPxN": setup.world.home(0).mpan}
            )
        ),
    )
    assert _dcc_answer(setup, reply).code is ResponseCode.INVALID_REQUEST
    assert "non-device service 8.2" in reply.detail


def test_dcc_decisions_come_back_signed(setup: Setup) -> None:
    rid = setup.rid()
    first = setup.gateway.handle(
        Endpoint.SEND,
        setup.sign(build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")),
    )
    assert _dcc_answer(setup, first).code is ResponseCode.SUCCESS
    reused = setup.gateway.handle(
        Endpoint.SEND,
        setup.sign(build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")),
    )
    assert _dcc_answer(setup, reused).code is ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING
    critical_cv1 = setup.gateway.handle(
        Endpoint.SEND,
        setup.sign(build_request(setup.rid(), CommandVariant.NON_CRITICAL_TO_DEVICE, "7.2")),
    )
    assert _dcc_answer(setup, critical_cv1).code is ResponseCode.INVALID_COMMAND_VARIANT
    # the network operator (role ED) may not disable supply
    network = setup.world.network_operator
    rid = network.next_request_id(setup.world.home(0).esme.eui)
    refused = setup.gateway.handle(
        Endpoint.TRANSFORM,
        setup.sign(build_request(rid, CommandVariant.CRITICAL_TRANSFORM, "7.2"), "network"),
    )
    assert _dcc_answer(setup, refused).code is ResponseCode.ROLE_NOT_ELIGIBLE


def test_quarantine_is_acknowledged_and_an_alert_queued(setup: Setup) -> None:
    for home in range(2):
        for _ in range(2):
            rid = setup.rid(home)
            t = _dcc_answer(
                setup,
                setup.gateway.handle(
                    Endpoint.TRANSFORM,
                    setup.sign(build_request(rid, CommandVariant.CRITICAL_TRANSFORM, "7.2")),
                ),
            )
            assert t.precommand is not None
            signed = sign_precommand(
                t.precommand, keystore=setup.world.supplier.keystore, label="ds"
            )
            reply = setup.gateway.handle(
                Endpoint.SEND,
                setup.sign(
                    build_signed_precommand_request(
                        rid, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, "7.2", signed.wire()
                    )
                ),
            )
            last = _dcc_answer(setup, reply)
    assert last.code is ResponseCode.ACKNOWLEDGED and last.gbcs is None
    assert len(setup.gateway.alerts) == 1
    alert = read_response(parse_xml(setup.gateway.alerts[0]))
    assert (
        alert.dcc_alert is DccAlertCode.QUARANTINED_REQUEST and alert.quarantine_ticket is not None
    )


def test_bad_signature_is_400_with_signed_e1(setup: Setup) -> None:
    data = setup.sign(build_request(setup.rid(), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"))
    tampered = data.replace(b"<sr:CommandVariant>1<", b"<sr:CommandVariant>2<")
    reply = setup.gateway.handle(Endpoint.SEND, tampered)
    assert reply.status == 400
    assert _dcc_answer(setup, reply).code is ResponseCode.USER_NOT_AUTHORISED
    assert "digest" in reply.detail


def test_unsigned_request_is_refused(setup: Setup) -> None:
    root = build_request(setup.rid(), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
    reply = setup.gateway.handle(
        Endpoint.SEND, bytes(__import__("lxml.etree").etree.tostring(root))
    )
    assert reply.status == 400 and "no ds:Signature" in reply.detail
    assert _dcc_answer(setup, reply).code is ResponseCode.USER_NOT_AUTHORISED


def test_signer_other_than_originator_is_e21(setup: Setup) -> None:
    rid = setup.rid()  # the supplier's RequestID, signed with the network operator's key
    reply = setup.gateway.handle(
        Endpoint.SEND,
        setup.sign(build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"), "network"),
    )
    assert reply.status == 400
    assert _dcc_answer(setup, reply).code is ResponseCode.REQUEST_ID_ORIGINATOR_MISMATCH


def test_schema_invalid_is_400_with_signed_e11(setup: Setup) -> None:
    root = build_request(
        setup.rid(), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1", body_element="FrobnicateMeter"
    )
    reply = setup.gateway.handle(Endpoint.SEND, setup.sign(root))
    assert reply.status == 400 and "FrobnicateMeter" in reply.detail
    assert _dcc_answer(setup, reply).code is ResponseCode.INVALID_REQUEST


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"", 400, "malformed-xml"),
        (b"<not xml", 400, "malformed-xml"),
        (b"<a/>", 400, "schema-invalid"),
        (b"x" * (64 * 1024 + 1), 413, "too-large"),
    ],
)
def test_unanswerable_input_is_problem_json(
    setup: Setup, body: bytes, status: int, kind: str
) -> None:
    reply = setup.gateway.handle(Endpoint.SEND, body)
    assert (reply.status, reply.content_type) == (status, PROBLEM_CONTENT_TYPE)
    document = json.loads(reply.body)
    assert document["type"].endswith(kind) and document["status"] == status and document["detail"]


_FUZZ_SETUP: list[Setup] = []


def _fuzz_setup() -> Setup:
    if not _FUZZ_SETUP:
        _FUZZ_SETUP.append(_setup(1))
    return _FUZZ_SETUP[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(list(Endpoint)),
    st.integers(0, 4000),
    st.integers(0, 40),
    st.binary(max_size=16),
)
def test_fuzz_gateway_never_fails_unexpectedly(
    endpoint: Endpoint, at: int, cut: int, insert: bytes
) -> None:
    setup = _fuzz_setup()
    valid = setup.sign(build_request(setup.rid(), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"))
    at = at % len(valid)
    reply = setup.gateway.handle(endpoint, valid[:at] + insert + valid[at + cut :])
    assert reply.status in (200, 400, 413)
    if reply.content_type == "application/xml":
        root = parse_xml(reply.body)
        setup.gateway.schema.validate(root)


# --- HTTP, in process ---------------------------------------------------------------------------


def test_http_app_routes_and_limits(threaded_setup: Setup) -> None:
    setup = threaded_setup
    client = TestClient(create_app(setup.gateway))
    rid = setup.rid()
    response = client.post(
        "/api/v1/serviceS",
        content=setup.sign(build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")),
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/xml"
    )
    too_big = client.post("/api/v1/serviceT", content=b"<" * (70 * 1024))
    assert too_big.status_code == 413 and too_big.headers["content-type"] == PROBLEM_CONTENT_TYPE
    wrong = client.post(
        "/api/v1/serviceT",
        content=setup.sign(
            build_request(setup.rid(), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
        ),
    )
    assert wrong.status_code == 200 and "serviceT" in wrong.headers[DETAIL_HEADER]
    assert client.get("/api/v1/serviceS").status_code == 405
    assert client.post("/api/v1/serviceX", content=b"<a/>").status_code == 404


def test_server_config_refuses_tls_without_files(setup: Setup, tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match="certfile, keyfile, ca_file"):
        server_config(setup.gateway, "127.0.0.1", 0, None, None, None, insecure_http=False)
    with pytest.raises(GatewayConfigError, match="not found"):
        server_config(
            setup.gateway,
            "127.0.0.1",
            0,
            tmp_path / "a",
            tmp_path / "b",
            tmp_path / "c",
            insecure_http=False,
        )


# --- real uvicorn over loopback with mutual TLS ----------------------------------------------------------


@dataclass
class Tls:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate from another CA
    stranger_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _make_tls(folder: Path) -> Tls:
    def pem(certificate: x509.Certificate, name: str) -> Path:
        path = folder / name
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("test DCC gateway CA", ca_key, None, ca_key, ca=True)
    server_key, client_key, other_key, stranger_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in range(4)
    )
    other_ca = _issue("another CA", other_key, None, other_key, ca=True)
    return Tls(
        ca=pem(ca, "ca.pem"),
        server_cert=pem(
            _issue("127.0.0.1", server_key, ca.subject, ca_key, server=True), "server.pem"
        ),
        server_key=_key_pem(server_key, folder / "server.key"),
        client_cert=pem(_issue("Supplier A", client_key, ca.subject, ca_key), "client.pem"),
        client_key=_key_pem(client_key, folder / "client.key"),
        stranger_cert=pem(
            _issue("Mallory", stranger_key, other_ca.subject, other_key), "stranger.pem"
        ),
        stranger_key=_key_pem(stranger_key, folder / "stranger.key"),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    setup: Setup
    tls: Tls
    url: str


def _run(config: uvicorn.Config) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return server, thread


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("gateway")
    setup = _setup(database=folder / "dcc.db")
    tls = _make_tls(folder)
    port = _free_port()
    config = server_config(
        setup.gateway,
        "127.0.0.1",
        port,
        tls.server_cert,
        tls.server_key,
        tls.ca,
        insecure_http=False,
    )
    server, thread = _run(config)
    yield Running(setup, tls, f"https://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(10)


def _client(tls: Tls, cert: Path | None, key: Path | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(tls.ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return httpx.Client(verify=context, timeout=10)


def test_https_4_1_1_and_7_2_end_to_end(running: Running) -> None:
    setup = running.setup
    with _client(running.tls, running.tls.client_cert, running.tls.client_key) as client:
        rid = setup.rid(1)
        read = client.post(
            f"{running.url}/api/v1/serviceS",
            content=setup.sign(build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")),
        )
        assert read.status_code == 200
        answer = _dcc_answer(setup, GatewayReply(read.status_code, "application/xml", read.content))
        assert answer.code is ResponseCode.SUCCESS and answer.gbcs is not None

        rid = setup.rid(1)
        transformed = client.post(
            f"{running.url}/api/v1/serviceT",
            content=setup.sign(build_request(rid, CommandVariant.CRITICAL_TRANSFORM, "7.2")),
        )
        precommand = read_response(parse_xml(transformed.content)).precommand
        assert precommand is not None
        signed = sign_precommand(precommand, keystore=setup.world.supplier.keystore, label="ds")
        sent = client.post(
            f"{running.url}/api/v1/serviceS",
            content=setup.sign(
                build_signed_precommand_request(
                    rid, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, "7.2", signed.wire()
                )
            ),
        )
        assert read_response(parse_xml(sent.content)).code is ResponseCode.SUCCESS
        assert setup.world.home(1).esme.supply is SupplyState.DISABLED
        # the DCC's response signature also verifies with signxml
        XMLVerifier().verify(
            sent.content,
            x509_cert=setup.signing.dcc.certificate.to_pem(),
            expect_config=SignatureConfiguration(require_x509=False),
        )

        garbage = client.post(f"{running.url}/api/v1/serviceS", content=b"\x00\x01 not xml")
        assert (
            garbage.status_code == 400 and garbage.headers["content-type"] == PROBLEM_CONTENT_TYPE
        )


@pytest.mark.parametrize("who", ["no certificate", "certificate from another CA"])
def test_client_without_a_trusted_certificate_is_refused_at_tls(running: Running, who: str) -> None:
    tls = running.tls
    cert, key = (None, None) if who == "no certificate" else (tls.stranger_cert, tls.stranger_key)
    with _client(tls, cert, key) as client, pytest.raises(httpx.TransportError):
        client.post(f"{running.url}/api/v1/serviceS", content=b"<a/>")


def test_insecure_http_mode(threaded_setup: Setup) -> None:
    setup = threaded_setup
    port = _free_port()
    server, thread = _run(
        server_config(setup.gateway, "127.0.0.1", port, None, None, None, insecure_http=True)
    )
    try:
        rid = setup.rid()
        reply = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/serviceS",
            content=setup.sign(build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")),
            timeout=10,
        )
        assert reply.status_code == 200
        assert read_response(parse_xml(reply.content)).code is ResponseCode.SUCCESS
    finally:
        server.should_exit = True
        thread.join(10)


def test_dcc_serve_cli_refuses_to_start_without_tls_files() -> None:
    from typer.testing import CliRunner

    from smarthydra.cli.main import app

    conformance_path("duis", "duis-5.4.xsd")  # the schema is checked before the TLS files
    result = CliRunner().invoke(app, ["dcc", "serve", "--homes", "1"])
    assert result.exit_code == 2
    assert "mutual TLS needs" in result.output and "Traceback" not in result.output

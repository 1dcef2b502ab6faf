"""DUIS rates: XMLDSig sign+verify against raw ECDSA sign+verify, and whole gateway requests.

- ``raw_ecdsa``: ``cryptography`` ECDSA-SHA256 sign then verify, the baseline;
- ``xmldsig``: build a 4.1.1 request, sign it through a keystore, parse, schema-validate, verify;
- ``gateway_in_process``: signed 4.1.1 XML into :class:`DccGateway` (schema, XMLDSig, DCC checks,
  GBCS, ACB MAC, the simulated meter's MAC'd answer, the DCC's signed XML response);
- ``gateway_https``: the same over loopback HTTPS with mutual TLS (uvicorn + httpx keep-alive);
- ``durable_*``: the dccboxed profile (plus bench suppliers, each owning an ESME): signed XML
  in, schema, XMLDSig, checks, group-committed and acknowledged (I99), the command MAC'd and
  queued for the WAN in the same transaction, on SQLite (WAL, synchronous NORMAL and FULL) and
  PostgreSQL. One user sends each request alone; 16 and 64 users send concurrently through the
  gateway pipeline the HTTP server uses (requests batched: one commit, one lock hold per batch),
  also with 2 front-door worker processes; ``https_mtls_durable_*`` the same through uvicorn
  with mutual TLS, the users in a process of their own. Each beside ``ecdsa_verify_per_s`` and
  against the GB national average of 850 messages a second, with the CPU per request of the
  DCC's process, its workers and the users.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from smarthydra.dcc.dccboxed import DccBoxedProfile
    from smarthydra.dcc.frontdoor import FrontDoorPool
    from smarthydra.dcc.gateway import GatewayReply

CONFORMANCE = Path(
    os.environ.get(
        "SMARTHYDRA_CONFORMANCE",
        Path(__file__).resolve().parents[1].parent / "shared" / "conformance",
    )
)
NATIONAL_AVERAGE_PER_S = 850  # GB DCC average messages per second, for the ratio
DISPATCH_INTERVAL = 0.1  # seconds between dispatch rounds while requests come in


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


@dataclass(frozen=True)
class _BenchUser:
    signer: XmlSigner
    device: Eui64


def _fleet(profile: DccBoxedProfile, users: int) -> list[_BenchUser]:
    """``users`` extra suppliers in the dccboxed profile, each registered (IS) for its own
    ESME, with XML-signing certificates from a bench CA that the gateway also trusts.

    DUIS counters rise per originator, so concurrent clients are different users (one user
    sending in parallel would race its own counters and earn E20s)."""
    import random

    from smarthydra.dcc.dccboxed import REGISTERED_SINCE
    from smarthydra.dcc.inventory import (
        DccUser,
        DeviceRecord,
        DeviceType,
        Registration,
        UserStatus,
    )
    from smarthydra.duis.xmldsig import IssuerSerial, UnknownCertificate
    from smarthydra.pki.certificates import OrganisationCertificate
    from smarthydra.pki.hierarchy import CaHierarchy
    from smarthydra.pki.profile import SmkiRole

    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    ca = CaHierarchy.create(
        SoftKeystore(None, passphrase=b"bench-ca"),
        not_before=start,
        not_after=start + dt.timedelta(days=36500),
        device_ca_capacity=16,
        rng=random.Random(7).randbytes,
    )
    reference = profile.dcc.inventory.device(Eui64.parse("00DB1234567890A0"))
    assert reference is not None
    fleet: list[_BenchUser] = []
    devices: list[DeviceRecord] = []
    for index in range(users):
        eui = Eui64(bytes.fromhex(f"90B3D51F3F{index:06X}"))
        device = Eui64(bytes.fromhex(f"00DB12345678{0xF000 + index:04X}"))
        keystore = SoftKeystore(None, passphrase=b"bench")
        public = keystore.generate("xml", KeyUsage.DIGITAL_SIGNATURE)
        certificate = ca.issue_organisation(
            subject_public_key=public,
            role=int(SmkiRole.XML_SIGNING_USER),
            eui64=eui.value,
            usage=KeyUsage.DIGITAL_SIGNATURE,
            not_before=start,
            not_after=start + dt.timedelta(days=36500),
        )
        profile.users.add(DccUser(eui, f"bench supplier {index}", {"IS": UserStatus.ACTIVE}, public))
        mpan = f"19{index:011d}"
        devices.append(
            DeviceRecord(device, DeviceType.ESME, reference.hub, mpan, reference.key_agreement_key)
        )
        profile.dcc.inventory.register(Registration(mpan, "IS", eui, REGISTERED_SINCE))
        fleet.append(_BenchUser(XmlSigner(keystore, "xml", certificate), device))
    profile.dcc.inventory.add_devices(devices)  # type: ignore[attr-defined]
    bench_lookup = static_lookup([user.signer.certificate for user in fleet])
    original = profile.gateway.certificates

    def lookup(wanted: IssuerSerial) -> OrganisationCertificate:
        try:
            return bench_lookup(wanted)
        except UnknownCertificate:
            return original(wanted)

    profile.gateway.certificates = lookup
    return fleet


def _signed_requests(user: _BenchUser, count: int, base: int) -> list[bytes]:
    return [
        user.signer.sign_bytes(
            build_request(
                RequestId(user.signer.eui, user.device, base + i),
                CommandVariant.NON_CRITICAL_TO_DEVICE,
                "4.1.1",
            )
        )
        for i in range(count)
    ]


def _front_door(
    profile: DccBoxedProfile, fleet: list[_BenchUser], processes: int, *, drafts: bool = True
) -> None:
    """Authentication and response drafting in ``processes`` worker processes."""
    from smarthydra.dcc.dccboxed import xml_signing_certificates
    from smarthydra.dcc.frontdoor import FrontDoorPool

    trusted = xml_signing_certificates(CONFORMANCE / "smki") + [
        user.signer.certificate for user in fleet
    ]
    profile.gateway.front_door = FrontDoorPool(
        CONFORMANCE / "duis",
        trusted,
        profile.gateway.signer.certificate,
        processes=processes,
        draft_responses=drafts,
    )


def _durable(
    url: str,
    clients: int,
    total: int,
    *,
    sqlite_synchronous: str = "NORMAL",
    processes: int = 0,
    drafts: bool = True,
) -> dict[str, float]:
    """The dccboxed profile on ``url``: ``clients`` users send signed 4.1.1 XML concurrently
    (schema, XMLDSig, checks, group commit, I99 signed back, the command MAC'd and queued for
    the WAN in the same transaction); the rate is requests per second until the last is
    queued. Requests are signed beforehand: signing is the users' cost, not the DCC's.

    One user calls :meth:`DccGateway.handle` directly (each request alone, one commit each).
    Several users are tasks on an event loop, each awaiting its reply before sending the next,
    through the :class:`GatewayPipeline` the HTTP server uses, so what is measured is the
    DCC's own path without HTTP."""
    import asyncio

    from smarthydra.dcc.dccboxed import build_dccboxed
    from smarthydra.dcc.gateway import Endpoint
    from smarthydra.dcc.pipeline import GatewayPipeline

    profile = build_dccboxed(CONFORMANCE, url, sqlite_synchronous=sqlite_synchronous)
    fleet = _fleet(profile, clients)
    if processes:
        _front_door(profile, fleet, processes, drafts=drafts)
    per_client = max(1, total // clients)
    base = int(time.time() * 1000)
    work = [_signed_requests(user, per_client, base) for user in fleet]
    failures: list[str] = []

    def check(reply: GatewayReply) -> None:
        if reply.status != 200 or b">I99<" not in reply.body:
            failures.append(reply.detail or reply.body[:200].decode(errors="replace"))

    pool = profile.gateway.front_door
    workers_before = _worker_cpu(pool)
    cpu_before = time.process_time()
    start = time.perf_counter()
    if clients == 1:
        for document in work[0]:
            check(profile.gateway.handle(Endpoint.SEND, document))
    else:
        pipeline = GatewayPipeline(profile.gateway)

        async def user(documents: list[bytes]) -> None:
            for document in documents:
                check(await pipeline.handle(Endpoint.SEND, document))

        async def users() -> None:
            await asyncio.gather(*(user(documents) for documents in work))

        try:
            asyncio.run(users())
        finally:
            pipeline.close()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    workers = _worker_cpu(pool) - workers_before
    count = per_client * clients
    if failures:
        raise RuntimeError(f"{len(failures)} bench requests refused, e.g. {failures[0]}")
    if len(profile.store.queued_frames(limit=count + 1)) != count:
        raise RuntimeError("not every request reached the WAN queue")
    committer = profile.dcc.committer
    groups = committer.batches if committer is not None else count
    if committer is not None:
        committer.close()
    if pool is not None:
        pool.close()
    profile.store.engine.dispose()
    return {
        "per_s": count / elapsed,
        "requests_per_commit": count / max(1, groups),
        # CPU per request in the DCC's own process, and in the front-door workers: what the
        # rate would be with a core each, whatever else runs.
        "dcc_process_cpu_ms": 1000 * cpu / count,
        "worker_cpu_ms": 1000 * workers / count,
    }


def _worker_cpu(pool: FrontDoorPool | None) -> float:
    """CPU seconds the front-door worker processes have used (Linux /proc; 0 without)."""
    if pool is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pool.worker_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def _https_durable(
    seconds: float, folder: Path, clients: int, processes: int = 0
) -> dict[str, float]:
    """The same durable profile behind uvicorn with mutual TLS; ``clients`` users, each on its
    own keep-alive connection, send concurrently."""
    import uvicorn

    from smarthydra.dcc.dccboxed import build_dccboxed
    from smarthydra.dcc.gateway import server_config

    profile = build_dccboxed(CONFORMANCE, f"sqlite:///{folder / f'https{processes}.sqlite3'}")
    fleet = _fleet(profile, clients)
    if processes:
        _front_door(profile, fleet, processes)
    per_client = max(20, int(seconds * 150))
    base = int(time.time() * 1000)
    work = [_signed_requests(user, per_client, base) for user in fleet]
    tls = _tls_files(folder)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        server_config(
            profile.gateway,
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
    done = threading.Event()

    def dispatcher() -> None:
        while not done.is_set():
            if not profile.dcc.dispatch_accepted(limit=1000):
                time.sleep(DISPATCH_INTERVAL)

    # The users run in a process of their own, so their HTTP client does not share the
    # DCC's interpreter (its GIL) with the server.
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(1) as users:
        users.apply(_https_users, (port, {k: str(v) for k, v in tls.items()}, [[]]))  # warm up
        background = threading.Thread(target=dispatcher)
        background.start()
        try:
            workers_before = _worker_cpu(profile.gateway.front_door)
            cpu_before = time.process_time()
            elapsed, failures, users_cpu = users.apply(
                _https_users, (port, {k: str(v) for k, v in tls.items()}, work)
            )
            done.set()
            background.join()
            _drain_dispatch(profile)
            cpu = time.process_time() - cpu_before
            workers = _worker_cpu(profile.gateway.front_door) - workers_before
        finally:
            done.set()
            server.should_exit = True
            thread.join(10)
            if profile.gateway.front_door is not None:
                profile.gateway.front_door.close()
    if failures:
        raise RuntimeError(f"{len(failures)} HTTPS bench requests refused, e.g. {failures[0]}")
    count = per_client * clients
    return {
        "per_s": count / elapsed,
        # the DCC's process: uvicorn, TLS, the gateway and the store (the users run apart)
        "dcc_process_cpu_ms": 1000 * cpu / count,
        "worker_cpu_ms": 1000 * workers / count,
        "users_cpu_ms": 1000 * users_cpu / count,
    }


def _drain_dispatch(profile: DccBoxedProfile) -> int:
    """Dispatch rounds until nothing accepted is left to send; how many were sent."""
    sent = 0
    while (round_sent := profile.dcc.dispatch_accepted(limit=1000)) > 0:
        sent += round_sent
    return sent


def _https_users(
    port: int, tls: dict[str, str], work: list[list[bytes]]
) -> tuple[float, list[str], float]:
    """In the users' process: one keep-alive mutual-TLS connection per user, each sending its
    signed requests in turn; (seconds until the last answer, failures, the users' CPU seconds).

    The users speak plain HTTP/1.1 on an event loop (uvloop when installed) rather than
    through httpx: on this 2-core machine the load generator shares the cores with the DCC,
    and httpx's own CPU per request was as much as the DCC's, so it measured the client."""
    import asyncio

    context = ssl.create_default_context(cafile=tls["ca_cert"])
    context.load_cert_chain(tls["client_cert"], tls["client_key"])
    failures: list[str] = []

    async def user(documents: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        try:
            for document in documents:
                writer.write(
                    b"POST /api/v1/serviceS HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(document), document)
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if status != 200 or b">I99<" not in body:
                    failures.append(f"{status} {body[:200]!r}")
        finally:
            writer.close()

    async def users() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(user(documents) for documents in work))
        return time.perf_counter() - start

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    cpu = time.process_time()
    elapsed = runner(users())
    return elapsed, failures, time.process_time() - cpu


def _postgres_url() -> str | None:
    """A fresh schema on the local PostgreSQL (as the tests use), or None without one."""
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine, text
    except ImportError:
        return None
    base = os.environ.get(
        "SMARTHYDRA_TEST_POSTGRES_URL", "postgresql://smarthydra:smarthydra@localhost/smarthydra"
    ).replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"bench_{os.getpid()}"
    try:
        engine = create_engine(base)
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        engine.dispose()
    except Exception:
        return None
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


def _drop_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    base, _, options = url.partition("?options=-csearch_path%3D")
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {options} CASCADE"))
    engine.dispose()


def _rated(
    result: dict[str, object],
    name: str,
    rate: float,
    verify_rate: float,
    measured: dict[str, float] | None = None,
) -> None:
    result[f"{name}_per_s"] = round(rate, 1)
    result[f"{name}_vs_national_average"] = round(rate / NATIONAL_AVERAGE_PER_S, 3)
    result[f"{name}_vs_ecdsa_verify"] = round(rate / verify_rate, 3)
    if measured is not None:
        result[f"{name}_cpu_ms_per_request"] = round(measured["dcc_process_cpu_ms"], 3)
        if measured.get("worker_cpu_ms"):
            result[f"{name}_worker_cpu_ms_per_request"] = round(measured["worker_cpu_ms"], 3)


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
        "national_average_per_s": NATIONAL_AVERAGE_PER_S,
    }
    if schema is None:
        result["gateway"] = f"skipped: DUIS schema not found in {schema_dir}"
        return result
    verify_key = key.public_key()
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    verify_rate = _rate(lambda: verify_key.verify(signature, message, ec.ECDSA(hashes.SHA256())), seconds)
    result["ecdsa_verify_per_s"] = round(verify_rate, 1)
    for name, rate in _gateway(seconds, schema_dir).items():
        _rated(result, f"gateway_{name.removesuffix('_per_s')}", rate, verify_rate)
    if not (CONFORMANCE / "smki").is_dir():
        result["durable"] = f"skipped: no SMKI test data in {CONFORMANCE}"
        return result
    total = 640 if quick else 6400
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one = _durable(f"sqlite:///{folder / 'one.sqlite3'}", 1, total // 4)
        _rated(result, "durable_sqlite_1_client", one["per_s"], verify_rate, one)
        for clients in (16, 64):
            many = _durable(f"sqlite:///{folder / f'many{clients}.sqlite3'}", clients, total)
            _rated(result, f"durable_sqlite_{clients}_clients", many["per_s"], verify_rate, many)
            result[f"durable_sqlite_{clients}_clients_requests_per_commit"] = round(
                many["requests_per_commit"], 1
            )
        clients = 64
        pooled = _durable(f"sqlite:///{folder / 'pool.sqlite3'}", clients, total, processes=2)
        name = f"durable_sqlite_{clients}_clients_2_worker_processes"
        _rated(result, name, pooled["per_s"], verify_rate, pooled)
        # With the DCC's process alone on a core (the workers on the other), its CPU per
        # request bounds the rate; on this shared machine the measured rate is lower.
        result[f"{name}_dcc_process_bound_per_s"] = round(1000 / pooled["dcc_process_cpu_ms"], 1)
        full = _durable(
            f"sqlite:///{folder / 'full.sqlite3'}", clients, total, sqlite_synchronous="FULL"
        )
        _rated(result, f"durable_sqlite_full_sync_{clients}_clients", full["per_s"], verify_rate, full)
        postgres = _postgres_url()
        if postgres is None:
            result["durable_postgres"] = "skipped: no PostgreSQL server"
        else:
            try:
                pg = _durable(postgres, clients, total)
            finally:
                _drop_postgres(postgres)
            _rated(result, f"durable_postgres_{clients}_clients", pg["per_s"], verify_rate, pg)
            result[f"durable_postgres_{clients}_clients_requests_per_commit"] = round(
                pg["requests_per_commit"], 1
            )
        for processes in (0, 2):
            https = _https_durable(seconds, folder, 32, processes)
            name = "https_mtls_durable_32_clients" + (
                f"_{processes}_worker_processes" if processes else ""
            )
            _rated(result, name, https["per_s"], verify_rate, https)
            result[f"{name}_users_cpu_ms_per_request"] = round(https["users_cpu_ms"], 3)
    return result

"""End to end through the CLI: `duis send` to a dccboxed DCC over HTTP and mutual TLS (with the
TLS client tied to the XML signer), polling, and the operator's quarantine and threshold commands."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from smarthydra.cli.duis import endpoint_url
from smarthydra.cli.main import app
from smarthydra.dcc.dccboxed import SUPPLIER, build_dccboxed
from smarthydra.dcc.gateway import server_config
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import build_request, parse_xml, read_response
from tests.conftest import conformance_path
from tests.dcc.dccboxed_helpers import ESME, boxed
from tests.dcc.test_gateway import _free_port, _issue, _key_pem, _run

runner = CliRunner()


def _unsigned_request(folder: Path, counter: int, srv: str = "4.1.1") -> Path:
    from lxml import etree

    root = build_request(
        RequestId(SUPPLIER, ESME, counter), CommandVariant.NON_CRITICAL_TO_DEVICE, srv, {}
    )
    path = folder / f"request-{counter}.xml"
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return path


def _smki(name: str) -> str:
    return str(conformance_path("smki", name))


@dataclass
class Served:
    url: str
    folder: Path
    database: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("dccboxed")
    database = f"sqlite:///{folder / 'dcc.sqlite3'}"
    profile = build_dccboxed(conformance_path(), database)
    port = _free_port()
    server, thread = _run(
        server_config(profile.gateway, "127.0.0.1", port, None, None, None, insecure_http=True)
    )
    yield Served(f"http://127.0.0.1:{port}", folder, database)
    server.should_exit = True
    thread.join(10)


def test_duis_send_signs_with_the_dccboxed_supplier_key_and_is_acknowledged(served: Served) -> None:
    request = _unsigned_request(served.folder, 1)
    result = runner.invoke(
        app,
        [
            "duis", "send", str(request),
            "--key", _smki("xml-sign-90B3D51F30010000-ds.key"),
            "--cert", _smki("xml-sign-90B3D51F30010000-ds.pem"),
            "--url", served.url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ResponseCode I99" in result.output
    # the same counter again: E20, and a non-zero exit
    again = runner.invoke(
        app,
        [
            "duis", "send", str(request),
            "--key", _smki("xml-sign-90B3D51F30010000-ds.key"),
            "--cert", _smki("xml-sign-90B3D51F30010000-ds.pem"),
            "--url", served.url,
        ],
    )
    assert again.exit_code == 1 and "ResponseCode E20" in again.output


def test_duis_send_with_a_key_that_does_not_match_the_certificate_is_refused(served: Served) -> None:
    result = runner.invoke(
        app,
        [
            "duis", "send", str(_unsigned_request(served.folder, 2)),
            "--key", _smki("xml-sign-90B3D51F30020000-ds.key"),
            "--cert", _smki("xml-sign-90B3D51F30010000-ds.pem"),
            "--url", served.url,
        ],
    )
    assert result.exit_code == 1 and "ResponseCode E1" in result.output


def test_duis_send_bad_inputs_fail_cleanly(tmp_path: Path) -> None:
    garbage = tmp_path / "x.xml"
    garbage.write_text("not xml")
    result = runner.invoke(
        app,
        ["duis", "send", str(garbage), "--key", str(garbage), "--cert", str(garbage), "--url", "http://127.0.0.1:1"],
    )
    assert result.exit_code == 2 and "error:" in result.output
    assert endpoint_url("https://dcc", 4) == "https://dcc/api/v1/serviceT"
    assert endpoint_url("https://dcc/", 8) == "https://dcc/api/v1/serviceN"
    assert endpoint_url("https://dcc/api/v1/serviceS", 4) == "https://dcc/api/v1/serviceS"


def test_polling_needs_an_identity(served: Served) -> None:
    reply = httpx.get(f"{served.url}/api/v1/responses", timeout=10)
    assert reply.status_code == 401
    reply = httpx.get(
        f"{served.url}/api/v1/responses", headers={"X-DUIS-User": "90B3D51F30020000"}, timeout=10
    )
    assert reply.status_code == 204


# --- mutual TLS: the client certificate names the user who must have signed ------------------


def test_tls_client_identity_is_tied_to_the_xml_signer(tmp_path: Path) -> None:
    from cryptography import x509

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("DUIS TLS CA", ca_key, None, ca_key, ca=True)

    def pem(certificate: x509.Certificate, name: str) -> Path:
        path = tmp_path / name
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return path

    server_key = ec.generate_private_key(ec.SECP256R1())
    files = {"ca": pem(ca, "ca.pem")}
    files["server"] = pem(_issue("127.0.0.1", server_key, ca.subject, ca_key, server=True), "s.pem")
    files["server_key"] = _key_pem(server_key, tmp_path / "s.key")
    for who, eui in (("supplier", "90B3D51F30010000"), ("other", "90B3D51F30020000")):
        key = ec.generate_private_key(ec.SECP256R1())
        files[who] = pem(_issue(eui, key, ca.subject, ca_key), f"{who}.pem")
        files[f"{who}_key"] = _key_pem(key, tmp_path / f"{who}.key")

    setup = boxed(f"sqlite:///{tmp_path / 'dcc.sqlite3'}")
    setup.profile.gateway.tie_tls_identity = True
    port = _free_port()
    server, thread = _run(
        server_config(
            setup.profile.gateway, "127.0.0.1", port,
            files["server"], files["server_key"], files["ca"], insecure_http=False,
        )
    )
    try:
        def post(who: str) -> ResponseCode | str:
            context = ssl.create_default_context(cafile=str(files["ca"]))
            context.load_cert_chain(str(files[who]), str(files[f"{who}_key"]))
            with httpx.Client(verify=context, timeout=10) as client:
                reply = client.post(
                    f"https://127.0.0.1:{port}/api/v1/serviceS", content=setup.request()
                )
            return read_response(parse_xml(reply.content)).code

        assert post("supplier") is ResponseCode.ACKNOWLEDGED
        assert post("other") is ResponseCode.USER_NOT_AUTHORISED
    finally:
        server.should_exit = True
        thread.join(10)


# --- operators: quarantine and thresholds -------------------------------------------------------


def test_quarantine_and_threshold_commands(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    thresholds = tmp_path / "thresholds.csv"
    thresholds.write_text("threshold,4.1.1,1,86400\n")
    loaded = runner.invoke(
        app,
        ["dcc", "thresholds", "load", str(thresholds), "--database", database, "--user", "90-B3-D5-1F-30-01-00-00"],
    )
    assert loaded.exit_code == 0, loaded.output
    setup = boxed(database)  # a DCC starting on that database applies the stored thresholds
    from tests.dcc.test_durable import send

    for _ in range(3):
        assert send(setup, setup.request()).code is ResponseCode.ACKNOWLEDGED
    listed = runner.invoke(app, ["dcc", "quarantine", "list", "--database", database])
    assert listed.exit_code == 0
    tickets = [int(line.split("\t")[0]) for line in listed.output.splitlines() if "\theld\t" in line]
    assert len(tickets) == 2
    released = runner.invoke(
        app, ["dcc", "quarantine", "release", str(tickets[0]), "--database", database, "--operator", "op1"]
    )
    assert released.exit_code == 0 and "released" in released.output
    deleted = runner.invoke(
        app, ["dcc", "quarantine", "delete", str(tickets[1]), "--database", database, "--operator", "op1"]
    )
    assert deleted.exit_code == 0
    twice = runner.invoke(
        app, ["dcc", "quarantine", "delete", str(tickets[1]), "--database", database, "--operator", "op1"]
    )
    assert twice.exit_code == 2 and "already deleted" in twice.output
    # The running DCC sends the released one in its next round (the one accepted was queued
    # as it was accepted), and its audit log carries on.
    assert setup.profile.dcc.dispatch_accepted() == 1
    assert send(setup, setup.request()).code is ResponseCode.ACKNOWLEDGED
    verified = runner.invoke(app, ["dcc", "audit", "verify", "--database", database])
    assert verified.exit_code == 0, verified.output

    bad = tmp_path / "bad.csv"
    bad.write_text("threshold,4.1.1,lots,86400\n")
    refused = runner.invoke(
        app, ["dcc", "thresholds", "load", str(bad), "--database", database, "--user", "90B3D51F30010000"]
    )
    assert refused.exit_code == 2 and "line 1" in refused.output
    user_limit = tmp_path / "limit.csv"
    user_limit.write_text("value-limit,1.5,1,AdjustMeterBalance\n")
    refused = runner.invoke(
        app, ["dcc", "thresholds", "load", str(user_limit), "--database", database, "--user", "90B3D51F30010000"]
    )
    assert refused.exit_code == 2 and "value limits are the DCC's" in refused.output

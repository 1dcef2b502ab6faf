"""The console over a durable dccboxed DCC (SQLite file) with a few requests, two of them
quarantined by a user threshold; and a client that can log in and find its CSRF token."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette's note about httpx2 is not ours to act on
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from smarthydra.console.app import mount_console
from smarthydra.dcc.gateway import Endpoint, create_app
from smarthydra.dcc.thresholds import submit_threshold_file
from smarthydra.eui import Eui64
from tests.dcc.dccboxed_helpers import Boxed, boxed

TOKEN = "operator-s3cret-token"
SUPPLIER_HEX = "90B3D51F30010000"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    setup: Boxed
    client: TestClient

    def login(self, token: str = TOKEN) -> None:
        reply = self.client.post("/console/login", data={"token": token}, follow_redirects=False)
        assert reply.status_code == 303, reply.text
        assert reply.headers["location"] == "/console"

    def csrf(self) -> str:
        match = CSRF.search(self.client.get("/console/quarantine").text)
        assert match is not None
        return match.group(1)

    def held_tickets(self) -> list[int]:
        return [row.ticket for row in self.setup.profile.store.quarantined()]


def build(tmp_path: Path, token: str | None = TOKEN, *, quarantined: bool = True) -> Console:
    setup = boxed(f"sqlite:///{tmp_path / 'dcc.sqlite3'}")
    gateway = setup.profile.gateway
    gateway.operator_token = token
    if quarantined:
        # One request per hour for 4.1.1: the third and fourth of four are held.
        submit_threshold_file(
            setup.profile.store, setup.profile.dcc.anomaly, Eui64.parse(SUPPLIER_HEX),
            "threshold,4.1.1,2,3600\n",
        )
    for _ in range(4):
        reply = gateway.handle(Endpoint.SEND, setup.request())
        assert reply.status == 200, reply
    front = create_app(gateway)
    mount_console(front, gateway)
    return Console(setup, TestClient(front))


@pytest.fixture
def console(tmp_path: Path) -> Console:
    return build(tmp_path)

"""Durable DCC state: the audit chain and counter floors survive a restart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from smarthydra.dcc.audit import AuditLog
from smarthydra.dcc.store import SqlDccStore
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.sim.world import build_world

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_audit_chain_and_counters_survive_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    store = SqlDccStore(url)
    log = AuditLog(sink=store.append_audit)
    log.append(T0, "a", "one", n=1)
    log.append(T0, "b", "two", n=2)
    user = Eui64.parse("90B3D51F30010000")
    store.set_last_counter(user, 2**64 - 1)  # the largest RequestID counter fits
    reopened = SqlDccStore(url)
    entries = reopened.load_audit()
    assert [e.action for e in entries] == ["one", "two"]
    assert AuditLog(entries).verify() is None
    assert reopened.last_counter(user) == 2**64 - 1
    assert reopened.last_counter(Eui64.parse("90B3D51F30020000")) is None


def test_dcc_restart_keeps_refusing_old_counters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    world = build_world(2, database_url=url)
    result = world.supplier.read_import_registers(world.dcc, world.home(0).esme.eui)
    assert result.code is ResponseCode.SUCCESS
    # A new DCC process on the same database: the counter floor and audit chain carry on.
    restarted = build_world(2, database_url=url)
    rid = RequestId(world.supplier.eui, restarted.home(0).esme.eui, world.supplier.counter)
    response = restarted.dcc.submit(
        ServiceRequest(
            rid, world.supplier.eui, "IS", "4.1.1", CommandVariant.NON_CRITICAL_TO_DEVICE
        )
    )
    assert response.code is ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING
    assert restarted.dcc.audit.verify() is None
    assert len(restarted.dcc.audit.entries) > len(world.dcc.audit.entries)


def test_in_memory_store_is_shared_across_threads() -> None:
    import threading

    store = SqlDccStore("sqlite://")
    user = Eui64.parse("90B3D51F30010000")
    seen: list[int | None] = []
    worker = threading.Thread(
        target=lambda: (store.set_last_counter(user, 7), seen.append(store.last_counter(user)))
    )
    worker.start()
    worker.join()
    assert seen == [7] and store.last_counter(user) == 7

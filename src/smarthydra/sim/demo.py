"""The walking-skeleton scenario behind ``smarthydra demo``.

Commission the homes, read every meter, disable supply at one home, then show the defences:
a distributor refused a critical command (E2), a replayed command and a tampered one dropped
by the meter itself, a command that bypasses the DCC dropped for want of the ACB MAC, and
the supplier's next disable within its window quarantined by anomaly detection.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from smarthydra.dcc.anomaly import Threshold
from smarthydra.eui import Eui64
from smarthydra.gbcs.builder import build_command
from smarthydra.gbcs.esme_payloads import MESSAGE_CODE_ECS43, open_load_switch_command
from smarthydra.parties.party import Outcome
from smarthydra.premises.esme import DropReason, SupplyState
from smarthydra.sim.world import KeystoreFactory, build_world, in_memory_keystores


@dataclass(frozen=True)
class Refusal:
    who: str
    srv: str
    code: str
    meaning: str


@dataclass
class DemoReport:
    homes: int
    keystore: str = "soft"
    reads_ok: int = 0
    reads_failed: int = 0
    reads_match_meters: bool = True
    supply_disabled: int = 0
    refused: list[Refusal] = field(default_factory=list)
    replays_dropped: int = 0
    tampered_dropped: int = 0
    bypass_dropped: int = 0
    quarantined: int = 0
    quarantine_tickets: list[int] = field(default_factory=list)
    meters_unchanged_by_attacks: bool = True
    audit_entries: int = 0
    audit_log_intact: bool = True
    audit_log_persisted: int = 0
    database: str = ""
    wan_frames: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def run_demo(
    homes: int = 10,
    *,
    seed: int = 1,
    conformance: Path | None = None,
    disable_threshold: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    database_url: str = "sqlite://",
    keystores: KeystoreFactory = in_memory_keystores,
    keystore_kind: str = "soft",
) -> DemoReport:
    if homes < 2:
        raise ValueError("the demo needs at least 2 homes (one to disable, one to protect)")
    started = time.perf_counter()

    def tick(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    world = build_world(
        homes,
        seed=seed,
        conformance=conformance,
        disable_threshold=Threshold(disable_threshold, dt.timedelta(days=1)),
        progress=lambda done: tick("commission", done, homes),
        database_url=database_url,
        keystores=keystores,
    )
    report = DemoReport(homes=homes, keystore=keystore_kind)
    captured: list[tuple[Eui64, bytes]] = []
    world.wan.tap = lambda hub, frame: captured.append((hub, frame))

    # 1. The supplier reads every meter; the values must be what each meter holds.
    for home in world.homes:
        result = world.supplier.read_import_registers(world.dcc, home.esme.eui)
        if result.outcome is Outcome.DONE and result.registers is not None:
            report.reads_ok += 1
            if result.registers.active_import_wh != home.esme.registers.active_import_wh:
                report.reads_match_meters = False
        else:
            report.reads_failed += 1
        tick("read", home.index + 1, homes)

    # 2. Disable supply at the first home (critical: pre-command, signature, ACB MAC).
    target = world.home(0)
    result = world.supplier.disable_supply(world.dcc, target.esme.eui)
    if result.outcome is Outcome.DONE and target.esme.supply is SupplyState.DISABLED:
        report.supply_disabled += 1
    disable_frame = captured[-1]

    # 3. The distributor may not disable supply: the DCC refuses it (E2).
    victim = world.home(1)
    result = world.network_operator.disable_supply(world.dcc, victim.esme.eui)
    if result.outcome is Outcome.REFUSED:
        report.refused.append(
            Refusal(world.network_operator.name, result.srv, result.code.value, result.code.meaning)
        )

    before = {home.index: home.esme.snapshot() for home in world.homes}

    def drops(reason: DropReason) -> int:
        return sum(1 for h in world.homes for e in h.esme.security_log if e.reason is reason)

    # 4. Replay the captured disable command: the meter's anti-replay floor drops it.
    world.wan.deliver(*disable_frame)
    report.replays_dropped = drops(DropReason.REPLAY)

    # 5. Tamper with one byte of the captured command: the ACB MAC no longer verifies.
    hub, frame = disable_frame
    tampered = bytearray(frame)
    tampered[len(tampered) // 2] ^= 0x01
    macs_before = drops(DropReason.MAC_INVALID)
    world.wan.deliver(hub, bytes(tampered))
    report.tampered_dropped = drops(DropReason.MAC_INVALID) - macs_before

    # 6. Bypass the DCC: a supplier MACing with a key of its own cannot pass the meter.
    counter = world.supplier.counter + 100
    z = world.supplier.keystore.derive_shared_secret("ka", victim.esme.key_agreement_key)
    forged = build_command(
        originator=world.supplier.eui.value,
        recipient=victim.esme.eui.value,
        counter=counter,
        message_code=MESSAGE_CODE_ECS43,
        payload=open_load_switch_command(counter),
        acb_z=z,
    )
    macs_before = drops(DropReason.MAC_INVALID)
    world.wan.deliver(victim.hub.eui, forged.wire())
    report.bypass_dropped = drops(DropReason.MAC_INVALID) - macs_before

    after = {home.index: home.esme.snapshot() for home in world.homes}
    report.meters_unchanged_by_attacks = before == after

    # 7. The supplier's next disable inside its window is quarantined, not sent.
    result = world.supplier.disable_supply(world.dcc, victim.esme.eui)
    if result.outcome is Outcome.QUARANTINED and victim.esme.supply is SupplyState.ENABLED:
        report.quarantined += 1
        if result.dcc_response is not None and result.dcc_response.quarantine_ticket is not None:
            report.quarantine_tickets.append(result.dcc_response.quarantine_ticket)

    report.audit_entries = len(world.dcc.audit.entries)
    report.audit_log_intact = world.dcc.audit.verify() is None
    if world.dcc.store is not None:
        report.audit_log_persisted = len(world.dcc.store.load_audit())
        report.database = database_url
    report.wan_frames = world.wan.statistics.delivered
    report.seconds = round(time.perf_counter() - started, 3)
    return report

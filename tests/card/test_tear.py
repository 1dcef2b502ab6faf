"""Tear safety: a power cut at any persistent write leaves the last committed state.

The property test runs random applet workloads and, for every persistent write *k* of the
workload, replays it on a fresh copy of the card with the power cut before write *k*, powers
up again and checks two oracles: the cells equal the reference run's cells at its last commit
point before *k*, and the counter applet's state is the one acknowledged before the
interrupted command or the one that command would have produced. Some cuts also hit the
recovery at the next power-up. The number of cut points is SMARTHYDRA_TEAR_CUTS (default
10000).
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smarthydra.card.apdu import CommandAPDU, ResponseAPDU
from smarthydra.card.card import Card
from smarthydra.card.examples import (
    COUNTER_AID,
    EXAMPLES_PROFILE,
    SIGNER_AID,
    CounterIns,
    SignerIns,
)
from smarthydra.card.memory import (
    FileBacking,
    MemoryBacking,
    NvmState,
    PhysicalWrite,
    PowerCut,
    PowerCutInjector,
    read_image,
)
from smarthydra.card.rng import DeterministicRandom
from smarthydra.card.transport import CardProcessDied, ProcessTransport

from .helpers import counter_state

TEAR_CUTS = int(os.environ.get("SMARTHYDRA_TEAR_CUTS", "10000"))
FILE_TEAR_CUTS = int(os.environ.get("SMARTHYDRA_FILE_TEAR_CUTS", "150"))
COUNTER_CELLS = tuple(f"a/{COUNTER_AID.hex()}/{name}" for name in ("value", "count", "check"))

Op = tuple[str, int, bytes]


class RecordingBacking(MemoryBacking):
    """Remembers the cells at every commit point (journal empty after a write)."""

    def __init__(self, state: NvmState) -> None:
        super().__init__(state)
        self.committed = [dict(state.cells)]  # committed[j]: last commit within j writes

    def write(self, write: PhysicalWrite) -> None:
        super().write(write)
        state = self._state
        self.committed.append(dict(state.cells) if not state.journal else self.committed[-1])


def commands_for(op: Op) -> list[bytes]:
    kind, amount, blob = op
    u32 = amount.to_bytes(4, "big")
    if kind == "signer":
        return [
            CommandAPDU(0x00, 0xA4, 0x04, 0x00, SIGNER_AID).encode(),
            CommandAPDU(0x80, SignerIns.GENERATE, 0, 0, ne=256).encode(),
            CommandAPDU(0x80, SignerIns.SET_AES, 0, 0, blob[:16].ljust(16, b"k")).encode(),
            CommandAPDU(0x00, 0xA4, 0x04, 0x00, COUNTER_AID).encode(),
        ]
    ins = {
        "add": CounterIns.ADD, "fail": CounterIns.ADD_THEN_FAIL,
        "open": CounterIns.ADD_LEAVE_OPEN, "label": CounterIns.SET_LABEL,
        "blob": CounterIns.SET_BLOB,
    }[kind]
    data = u32 if kind in ("add", "fail", "open") else blob
    return [CommandAPDU(0x80, ins, 0, 0, data, ne=256 if kind == "add" else 0).encode()]


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.one_of(st.integers(0, 1000), st.integers(0, 2**32 - 1)),
                  st.just(b"")),
        st.tuples(st.sampled_from(["fail", "open"]), st.integers(0, 1000), st.just(b"")),
        st.tuples(st.just("label"), st.just(0), st.binary(max_size=32)),
        st.tuples(st.just("blob"), st.just(0),
                  st.integers(0, 5000).map(lambda n: bytes([n % 251]) * n)),
        st.tuples(st.just("signer"), st.just(0), st.binary(min_size=16, max_size=16)),
    ),
    min_size=1,
    max_size=8,
)


def _personalised() -> NvmState:
    backing = MemoryBacking()
    Card(backing, EXAMPLES_PROFILE, rng=DeterministicRandom(b"tear")).power_on()
    return backing.load()


BASE = _personalised()


def _semantic(cells: dict[str, bytes]) -> tuple[bytes | None, ...]:
    return tuple(cells.get(c) for c in COUNTER_CELLS)


@dataclass
class Reference:
    committed: list[dict[str, bytes]]
    writes: int
    op_bounds: list[int]  # write count before each op, and the total at the end
    op_states: list[tuple[bytes | None, ...]]  # counter cells after each op (index 0: start)


def reference_run(workload: list[Op], base: NvmState) -> Reference:
    backing = RecordingBacking(base)
    injector = PowerCutInjector()
    card = Card(backing, EXAMPLES_PROFILE, rng=DeterministicRandom(b"w"), injector=injector)
    card.power_on()
    bounds, states = [injector.writes], [_semantic(backing.load().cells)]
    for op in workload:
        for command in commands_for(op):
            card.transmit(command)
        bounds.append(injector.writes)
        states.append(_semantic(backing.load().cells))
    return Reference(backing.committed, injector.writes, bounds, states)


def run_with_cut(workload: list[Op], base: NvmState, k: int, ref: Reference,
                 make_backing: type[MemoryBacking] | None = None,
                 file_backing: FileBacking | None = None) -> int:
    """Cut before write k; check recovery (sometimes cutting recovery too). Returns cuts."""
    backing = file_backing if file_backing is not None else MemoryBacking(base)
    injector = PowerCutInjector(cut_at=k)
    card = Card(backing, EXAMPLES_PROFILE, rng=DeterministicRandom(b"w"), injector=injector)
    cut = False
    try:
        card.power_on()
        for op in workload:
            for command in commands_for(op):
                card.transmit(command)
    except PowerCut as exc:
        cut = True
        assert exc.write_number == k
    assert cut and not card.powered, f"no cut happened at write {k} of {ref.writes}"
    cuts = 1
    torn = backing.load()
    if torn.journal and k % 3 == 0:
        # cut again, in the middle of the recovery at the next power-up
        recovery_writes = 1 + sum(1 for c, old in torn.journal if torn.cells.get(c) != old)
        again = PowerCutInjector(cut_at=k % recovery_writes)
        try:
            Card(backing, EXAMPLES_PROFILE, injector=again).power_on()
            raise AssertionError("recovery should have been cut")
        except PowerCut:
            cuts += 1
    recovered = Card(backing, EXAMPLES_PROFILE, rng=DeterministicRandom(b"w"))
    recovered.power_on()
    cells = backing.load().cells
    assert not backing.load().journal
    assert cells == ref.committed[k], f"cut at write {k}: state is not the last committed"
    # the interrupted op i: its writes span [bounds[i], bounds[i+1])
    i = max(j for j in range(len(ref.op_bounds) - 1) if ref.op_bounds[j] <= k)
    assert _semantic(cells) in (ref.op_states[i], ref.op_states[i + 1])
    value, count = counter_state(recovered)  # the card keeps working
    check = cells.get(COUNTER_CELLS[2])
    assert check is None or check in (bytes(8), value.to_bytes(4, "big") + count.to_bytes(4, "big"))
    return cuts


def test_tear_property_memory_backing() -> None:
    total = 0
    examples = 0

    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(ops)
    def one_workload(workload: list[Op]) -> None:
        nonlocal total, examples
        ref = reference_run(workload, BASE)
        examples += 1
        for k in range(ref.op_bounds[0], ref.writes):
            total += run_with_cut(workload, BASE, k, ref)

    rounds = 0
    while total < TEAR_CUTS and rounds < 1000:
        one_workload()
        rounds += 1
    assert total >= TEAR_CUTS, f"only {total} cut points in {examples} workloads"


def test_tear_file_backing(tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    rng = random.Random(7)
    total = 0
    attempt = 0
    while total < FILE_TEAR_CUTS:
        workload: list[Op] = [
            ("add", rng.randrange(1000), b""), ("label", 0, b"tear-test"),
            ("blob", 0, bytes(rng.randrange(3000))), ("fail", 5, b""), ("open", 9, b""),
            ("signer", 0, bytes(16)), ("add", 2**32 - 1, b""),
        ]
        ref = reference_run(workload, BASE)
        for k in range(ref.op_bounds[0], ref.writes):
            path = directory / f"card-{attempt}-{k}.img"
            from smarthydra.card.memory import write_image_atomically

            write_image_atomically(path, BASE, durable=False)
            total += run_with_cut(workload, BASE, k, ref,
                                  file_backing=FileBacking(path, durable=False))
            reloaded = read_image(path)  # what is on disk, read back cold
            assert reloaded.cells == ref.committed[k] or not reloaded.journal
            if total >= FILE_TEAR_CUTS:
                break
        attempt += 1


def test_killed_card_process_comes_back_consistent(tmp_path: object) -> None:
    from pathlib import Path

    image = Path(str(tmp_path)) / "card.img"
    transport = ProcessTransport(image, "examples")
    amount = 3
    for round_number in range(3):
        transport.power_on()
        acked = counter_state_via(transport)
        timer = threading.Timer(0.15 + 0.1 * round_number, transport.kill)
        timer.start()
        died = False
        try:
            for _ in range(100000):
                response = transport.send(CommandAPDU(0x80, CounterIns.ADD, 0, 0,
                                                      amount.to_bytes(4, "big"), ne=256))
                assert response.sw == 0x9000
                acked = (int.from_bytes(response.data[:4], "big"),
                         int.from_bytes(response.data[4:8], "big"))
        except CardProcessDied:
            died = True
        finally:
            timer.cancel()
        assert died
        transport.power_on()
        value, count = counter_state_via(transport)
        assert (value, count) in (acked, (acked[0] + amount, acked[1] + 1))
        cells = read_image(image).cells
        assert not read_image(image).journal  # power-up rolled back what was torn
        assert cells[COUNTER_CELLS[2]] == value.to_bytes(4, "big") + count.to_bytes(4, "big")
        transport.close()


def counter_state_via(transport: ProcessTransport) -> tuple[int, int]:
    transport.send(CommandAPDU(0x00, 0xA4, 0x04, 0x00, COUNTER_AID))
    response: ResponseAPDU = transport.send(CommandAPDU(0x80, CounterIns.READ, 0, 0, ne=256))
    assert response.sw == 0x9000
    return int.from_bytes(response.data[:4], "big"), int.from_bytes(response.data[4:8], "big")

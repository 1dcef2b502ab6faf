"""Restricted applets: refused at load, stopped at run time, and the card keeps working.

Post-issuance packages are put on the card through the load-file registration seam
(:func:`register_package`), as the GlobalPlatform LOAD path does, and then driven with APDUs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smarthydra.card.applet import Applet
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.examples import EXAMPLES_PROFILE, personalize_examples
from smarthydra.card.firewall import RUNTIME_CONTEXT, entered
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.package import AppletPackage, PackageError
from smarthydra.card.registry import (
    LOAD_FILE_DATA_PREFIX,
    Privilege,
    RegistryError,
    privileges_of,
)
from smarthydra.card.rng import DeterministicRandom
from smarthydra.card.runtime import CardManager, CardServices
from smarthydra.card.sandbox import (
    DEFAULT_BUDGET,
    PACKAGE_CELL,
    ExecutionBudget,
    SandboxViolation,
    compile_applet,
    load_restricted,
    package_resolver,
    register_package,
)

from .helpers import counter_state, select, send

APPLETS = Path(__file__).parent / "applets"
PURSE_LF, PURSE_MODULE, PURSE = (bytes.fromhex(h) for h in
                                 ("F0534859A0", "F0534859A001", "F0534859A00101"))
HOSTILE_LF, HOSTILE_MODULE, HOSTILE = (bytes.fromhex(h) for h in
                                       ("F0534859B0", "F0534859B001", "F0534859B00101"))
SNIPPET_LF, SNIPPET_MODULE, SNIPPET = (bytes.fromhex(h) for h in
                                       ("F0534859C0", "F0534859C001", "F0534859C00101"))
RUNAWAY, ACCESS, FIREWALL, MEMORY = ("AppletRunaway", "SandboxAccessDenied", "SecurityException",
                                     "AppletMemoryExceeded")


def package_from(name: str, aid: bytes, class_name: str, module: bytes) -> AppletPackage:
    return AppletPackage.build((APPLETS / name).read_text(), aid=aid, name=name[:-3],
                               applets={class_name: [module]})


def purse_package() -> AppletPackage:
    return package_from("purse.py", PURSE_LF, "PurseApplet", PURSE_MODULE)


def hostile_package() -> AppletPackage:
    return package_from("hostile.py", HOSTILE_LF, "HostileApplet", HOSTILE_MODULE)


def personalize_sandbox(manager: CardManager) -> None:
    """The example ROM applets plus the purse and the hostile applet, loaded post-issuance."""
    personalize_examples(manager)
    for package, module, instance, params in (
        (purse_package(), PURSE_MODULE, PURSE, (100).to_bytes(4, "big")),
        (hostile_package(), HOSTILE_MODULE, HOSTILE, b""),
    ):
        if manager.entry(instance) is None:
            register_package(manager, package)
            manager.install(package.aid, module, instance, params=params)


#: importable by ``smarthydra card --profile tests.card.test_sandbox:SANDBOX_PROFILE``
SANDBOX_PROFILE = dataclasses.replace(EXAMPLES_PROFILE, name="sandbox",
                                      personalize=personalize_sandbox,
                                      resolver=package_resolver())


def sandbox_card(backing: MemoryBacking | None = None) -> Card:
    card = Card(backing if backing is not None else MemoryBacking(), SANDBOX_PROFILE,
                rng=DeterministicRandom(b"sandbox-tests"))
    card.power_on()
    return card


def purse_state(card: Card) -> tuple[int, int]:
    assert select(card, PURSE).sw == 0x9000
    response = send(card, 0x80, 0x34, ne=256)
    assert response.sw == 0x9000, hex(response.sw)
    return int.from_bytes(response.data[:4], "big"), int.from_bytes(response.data[4:], "big")


def assert_card_healthy(card: Card) -> None:
    """The purse (restricted), the hostile applet's honest command and the ROM counter."""
    balance, operations = purse_state(card)
    assert balance == 100  # every test's purse starts at 100 and gets back there
    response = send(card, 0x80, 0x30, data=(5).to_bytes(4, "big"), ne=256)
    assert response.sw == 0x9000
    assert response.data == (105).to_bytes(4, "big") + (operations + 1).to_bytes(4, "big")
    assert send(card, 0x80, 0x32, data=(5).to_bytes(4, "big"), ne=256).sw == 0x9000
    assert send(card, 0x80, 0x36, data=bytes(range(10)), ne=256).data == (45).to_bytes(2, "big")
    assert select(card, HOSTILE).sw == 0x9000
    assert send(card, 0x80, 0x72, ne=256).data == b"ok"
    assert counter_state(card) == (0, 0)


# --- refused at load ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "class_name", "reason"),
    [
        ("imports_os.py", "Leaky", "import of 'os' is not allowed"),
        ("imports_runtime.py", "Internals", "import from 'smarthydra.card.runtime'"),
        ("reads_file.py", "Reader", "name 'open' is not available"),
        ("uses_eval.py", "Evaluator", "Eval calls are not allowed"),
        ("uses_exec.py", "Executor", "Exec calls are not allowed"),
        ("subclasses_escape.py", "Escaper", '"__class__" is an invalid attribute'),
        ("dunder_override.py", "Sneaky", "special method __getattribute__"),
        ("load_loop.py", "Never", "module body stopped at load: instruction budget"),
        ("persistent_hog.py", "Hog", "1060000 bytes of persistent fields"),
    ],
)
def test_malicious_packages_are_refused_at_load(fixture: str, class_name: str,
                                                reason: str) -> None:
    package = package_from(fixture, SNIPPET_LF, class_name, SNIPPET_MODULE)
    with pytest.raises(SandboxViolation, match=reason.replace("(", r"\(")):
        load_restricted(package)
    card = sandbox_card()
    with entered(RUNTIME_CONTEXT, None), pytest.raises(SandboxViolation):
        register_package(card.manager, package)
    assert all(lf.aid != SNIPPET_LF for lf in card.manager.load_files())
    assert card.backing.load().cells.get(f"{LOAD_FILE_DATA_PREFIX}{SNIPPET_LF.hex()}/"
                                         f"{PACKAGE_CELL}") is None
    assert_card_healthy(card)


def _applet_source(body: str, header: str = "") -> str:
    indented = "\n".join("        " + line for line in body.strip("\n").splitlines())
    return (
        "from smarthydra.card.applet import APDU, Applet, ISOException, PersistentBytes\n"
        "from smarthydra.card.apdu import SW\n"
        f"{header}\n"
        "class Probe(Applet):\n"
        "    def process(self, apdu: APDU) -> bytes | None:\n"
        "        if apdu.is_selecting:\n"
        "            return None\n"
        f"{indented}\n"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("import sys", "import of 'sys' is not allowed"),
        ("from os import path", "import from 'os' is not allowed"),
        ("from smarthydra.card.applet import _cell", "not part of the card API"),
        ("return getattr(self, 'card')", "name 'getattr' is not available"),
        ("return type(self)", "name 'type' is not available"),
        ("return globals()", "name 'globals' is not available"),
        ("return vars(self)", "name 'vars' is not available"),
        ("return __import__('os')", "invalid variable name"),
        ("return compile('1', 'x', 'eval')", "name 'compile' is not available"),
        ("return self._sh_card", "invalid attribute name"),
        ("return self.process.__func__.__globals__", "invalid attribute name"),
        ("return object.__subclasses__()", "invalid attribute name"),
        ("return (x for x in b'').gi_frame", "gi_frame"),
        ("f = lambda: 1\nreturn f()", "lambda is not allowed"),
        ("yield 1", "generators are not allowed"),
        ("print('x')", "name 'print' is not available"),
        ("return f'{1:>1000000000}'.encode()", "format specifications"),
        ("try:\n    pass\nexcept* ValueError:\n    pass", "TryStar"),
        ("class Meta(Applet, metaclass=Applet):\n    pass", "class keywords"),
        ("def f():\n    nonlocal x\n", "Nonlocal statements are not allowed"),
        ("return breakpoint()", "breakpoint"),
        ("return 1 +", "syntax error"),
    ],
)
def test_static_checks_name_the_problem(body: str, reason: str) -> None:
    package = AppletPackage.build(_applet_source(body), aid=SNIPPET_LF, name="probe",
                                  applets={"Probe": [SNIPPET_MODULE]})
    with pytest.raises(SandboxViolation, match=reason):
        load_restricted(package)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("class Bad(bytes):\n    pass", "may not derive from 'bytes'"),
        ("class Bad(Applet):\n    def __del__(self):\n        pass", "special method __del__"),
        ("@staticmethod\ndef helper():\n    pass", "decorators are not allowed"),
        ("x = [0] * (10 ** 9)", "module body stopped at load"),
        ("x = undefined_name", "name 'undefined_name' is not available"),
        ("raise ValueError('no')", "module body raised ValueError at load"),
    ],
)
def test_module_level_refusals(header: str, reason: str) -> None:
    package = AppletPackage.build(_applet_source("return None", header), aid=SNIPPET_LF,
                                  name="probe", applets={"Probe": [SNIPPET_MODULE]})
    with pytest.raises(SandboxViolation, match=reason):
        load_restricted(package)


def test_manifest_must_name_applets_of_the_package() -> None:
    source = _applet_source("return None", "class Helper:\n    pass")
    for class_name in ("Missing", "Helper", "ISOException"):
        package = AppletPackage.build(source, aid=SNIPPET_LF, name="probe",
                                      applets={class_name: [SNIPPET_MODULE]})
        with pytest.raises(SandboxViolation, match=f"manifest names {class_name}"):
            load_restricted(package)


def test_card_api_version_is_checked() -> None:
    package = AppletPackage.build(_applet_source("return None"), aid=SNIPPET_LF, name="p",
                                  applets={"Probe": [SNIPPET_MODULE]}, api_version=(2, 0))
    with pytest.raises(PackageError, match=r"needs card API 2\.0"):
        load_restricted(package)


def test_register_refuses_an_aid_in_use() -> None:
    card = sandbox_card()
    with entered(RUNTIME_CONTEXT, None), pytest.raises(PackageError, match="already in use"):
        register_package(card.manager, purse_package())


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_source_is_refused_cleanly_or_compiles(source: str) -> None:
    with contextlib.suppress(SandboxViolation):
        compile_applet(source)


# --- stopped at run time -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ins", "kind", "detail"),
    [
        (0x40, RUNAWAY, "instruction budget of 100000 steps exceeded"),
        (0x42, RUNAWAY, "instruction budget"),
        (0x44, RUNAWAY, "call depth of 32"),
        (0x46, MEMORY, "an object of 1000000000 bytes"),
        (0x48, MEMORY, "an object of 100000000 bytes"),
        (0x4A, MEMORY, "exceeds the limit"),
        (0x4C, MEMORY, "an object of 65536 bytes"),
        (0x4E, MEMORY, "an object of 65536 bytes"),
        (0x50, ACCESS, "str.format is not available"),
        (0x52, ACCESS, "attribute 'mro' of class int"),
        (0x54, FIREWALL, "may not access 'purse' of a BalanceView owned by purse"),
        (0x58, ACCESS, "may not modify CardServices"),
        (0x5A, ACCESS, "may not modify type"),
        (0x5C, MEMORY, "transient memory quota of 4096 bytes"),
        (0x5E, RUNAWAY, "instruction budget"),
        (0x62, MEMORY, "an object of 1000000000 bytes"),
        (0x64, RUNAWAY, "instruction budget"),
        (0x66, RUNAWAY, "instruction budget"),
        (0x68, RUNAWAY, "instruction budget"),
        (0x6A, MEMORY, "exceeds the limit"),
        (0x6C, RUNAWAY, "instruction budget"),
        (0x6E, ACCESS, "attributes of ValueError objects"),
        (0x70, MEMORY, "an object of 60016 bytes"),
    ],
)
def test_hostile_applet_is_stopped_and_the_card_keeps_working(ins: int, kind: str,
                                                              detail: str) -> None:
    card = sandbox_card()
    assert select(card, HOSTILE).sw == 0x9000
    response = send(card, 0x80, ins, ne=256)
    assert response.sw == 0x6F00
    assert response.data == b""
    assert kind in card.runtime.last_error
    assert detail in card.runtime.last_error
    assert not card.runtime.nvm.in_transaction
    assert_card_healthy(card)


def test_runaway_rolls_back_its_transaction() -> None:
    card = sandbox_card()
    select(card, HOSTILE)
    assert send(card, 0x80, 0x60, ne=256).data == bytes(4)
    assert send(card, 0x80, 0x5E, ne=256).sw == 0x6F00
    assert send(card, 0x80, 0x60, ne=256).data == bytes(4)  # the increment was undone


def test_poisoning_attempts_change_nothing() -> None:
    card = sandbox_card()
    select_before = Applet.select
    select(card, HOSTILE)
    send(card, 0x80, 0x58)
    send(card, 0x80, 0x5A)
    assert Applet.select is select_before
    assert "random" not in vars(card.runtime.services)
    assert type(card.runtime.services) is CardServices
    assert_card_healthy(card)


def test_shareable_interface_is_the_permitted_way_across_packages() -> None:
    card = sandbox_card()
    select(card, HOSTILE)
    response = send(card, 0x80, 0x56, ne=256)
    assert (response.sw, response.data) == (0x9000, (100).to_bytes(4, "big"))


def _probe_card(body: str, budget: ExecutionBudget = DEFAULT_BUDGET, header: str = "") -> Card:
    package = AppletPackage.build(_applet_source(body, header), aid=SNIPPET_LF, name="probe",
                                  applets={"Probe": [SNIPPET_MODULE]})
    card = sandbox_card()
    with entered(RUNTIME_CONTEXT, None):
        register_package(card.manager, package, budget=budget)
        card.manager.install(SNIPPET_LF, SNIPPET_MODULE, SNIPPET)
    assert select(card, SNIPPET).sw == 0x9000
    return card


@pytest.mark.parametrize(
    ("body", "sw", "expected"),
    [
        ("return self.card.manager()", 0x6F00, "card management is for security domains"),
        ("return repr(ISOException.mro()).encode()", 0x6F00, "attribute 'mro'"),
        ("return ISOException.with_traceback", 0x6F00, "attribute 'with_traceback'"),
        ("return (1).to_bytes(10 ** 6, 'big')", 0x6F00, "an object of 1000000 bytes"),
        ("return ('%s' % 'x').encode()", 0x6F00, "printf-style"),
        ("return bytes([*range(10 ** 9)])", 0x6F00, "exceeds the limit"),
        ("return bytes(list(range(10 ** 9)))", 0x6F00, "exceeds the limit"),
        ("return repr(max(range(10 ** 9))).encode()", 0x6F00, "exceeds the limit"),
        ("n = 0\nfor i in range(10 ** 9):\n    n = n + 1\nreturn None", 0x6F00,
         "instruction budget"),
        ("return bytes(range(10 ** 6))", 0x6F00, "an object of 32769 bytes"),
        ("x = 10\nx **= 10 ** 7\nreturn None", 0x6F00, "exceeds the limit"),
        ("return 'ab'.replace('a', 'b').encode()", 0x6F00, "str.replace is not available"),
        ("return ''.ljust(10 ** 9).encode()", 0x6F00, "str.ljust is not available"),
        ("return repr(range(10 ** 12).count('x')).encode()", 0x6F00, "range.count"),
        ("return repr(apdu.set_status.__self__).encode()", None, "invalid attribute"),
        ("items = list(range(30000))\nfor i in range(10 ** 6):\n    if -1 in items:\n"
         "        pass\nreturn None", 0x6F00, "instruction budget"),
        ("items = list(range(30000))\nreturn repr(items).encode()", 0x6F00, "exceeds the limit"),
        ("items = list(range(30000))\nreturn f'{items}'.encode()", 0x6F00, "exceeds the limit"),
        ("b = bytes(30000)\nreturn b.hex().encode()", 0x6F00, "an object of 60000 bytes"),
        ("while True:\n    self.note = 1", 0x6F00, "instruction budget"),
        ("Probe.note = 1", 0x6F00, "may not modify type"),
        ("class Late(Applet):\n    big = PersistentBytes(max_size=10 ** 6)\nreturn None",
         0x6F00, "bytes of persistent fields"),
        ("return self.card.random(8)", 0x9000, ""),
        ("data = bytearray(4)\ndata[1] += 7\nreturn bytes(data)", 0x9000, ""),
        ("return bytes.fromhex('0102') + bytes(2)", 0x9000, ""),
        ("x = {1: b'a'}\nreturn b''.join([x[1], b'b'])", 0x9000, ""),
        ("return bytes(sorted_pair(3, 1))", 0x9000, ""),
        ("return str(isinstance(b'', bytes)).encode()", 0x9000, ""),
        ("raise ISOException(SW.WRONG_DATA)", 0x6A80, ""),
    ],
)
def test_escape_attempts_at_run_time(body: str, sw: int | None, expected: str) -> None:
    header = ("def sorted_pair(a, b):\n    if a > b:\n        return [b, a]\n"
              "    return [a, b]\n")
    if sw is None:
        with pytest.raises(SandboxViolation, match=expected):
            _probe_card(body, header=header)
        return
    card = _probe_card(body, header=header)
    card.runtime.last_error = ""
    response = send(card, 0x80, 0x01, ne=256)
    assert response.sw == sw, card.runtime.last_error
    assert expected in card.runtime.last_error
    assert_card_healthy(card)


def test_budget_is_counted_not_timed() -> None:
    body = ("n = int.from_bytes(apdu.data, 'big')\ntotal = 0\nfor i in range(n):\n"
            "    total = total + i\nreturn total.to_bytes(8, 'big')")
    card = _probe_card(body, ExecutionBudget(instructions=1000))
    for _ in range(3):  # the same verdict every time, at the same step
        ok = send(card, 0x80, 0x01, data=(990).to_bytes(2, "big"), ne=256)
        assert (ok.sw, ok.data) == (0x9000, sum(range(990)).to_bytes(8, "big"))
        stopped = send(card, 0x80, 0x01, data=(1000).to_bytes(2, "big"), ne=256)
        assert stopped.sw == 0x6F00
        assert "instruction budget of 1000 steps" in card.runtime.last_error


def test_runaway_constructor_refuses_install_and_spares_the_card() -> None:
    header = "from smarthydra.card.applet import PersistentBool\n"
    source = header + (
        "class Spinner(Applet):\n"
        "    armed = PersistentBool()\n"
        "    def __init__(self):\n"
        "        while self.armed:\n"
        "            pass\n"
        "    def process(self, apdu: APDU) -> bytes | None:\n"
        "        if not apdu.is_selecting:\n"
        "            self.armed = True\n"
        "        return None\n"
    )
    source = "from smarthydra.card.applet import APDU, Applet\n" + source
    package = AppletPackage.build(source, aid=SNIPPET_LF, name="spinner",
                                  applets={"Spinner": [SNIPPET_MODULE]})
    backing = MemoryBacking()
    card = sandbox_card(backing)
    with entered(RUNTIME_CONTEXT, None):
        register_package(card.manager, package)
        card.manager.install(SNIPPET_LF, SNIPPET_MODULE, SNIPPET)
    assert select(card, SNIPPET).sw == 0x9000
    assert send(card, 0x80, 0x01).sw == 0x9000  # arms the trap for the next power-up
    card.reset()
    assert select(card, SNIPPET).sw == 0x6A82  # its constructor is stopped: not selectable
    assert "AppletRunaway" in card.runtime.last_error
    assert_card_healthy(card)

    spin = AppletPackage.build(
        "from smarthydra.card.applet import Applet\n"
        "class Spin(Applet):\n    def __init__(self):\n        while True:\n            pass\n",
        aid=bytes.fromhex("F0534859D0"), name="spin",
        applets={"Spin": [bytes.fromhex("F0534859D001")]})
    with entered(RUNTIME_CONTEXT, None):
        register_package(card.manager, spin)
        with pytest.raises(RegistryError, match="AppletRunaway"):
            card.manager.install(spin.aid, bytes.fromhex("F0534859D001"),
                                 bytes.fromhex("F0534859D00101"))
    assert card.manager.entry(bytes.fromhex("F0534859D00101")) is None
    assert_card_healthy(card)


def test_default_applet_with_a_runaway_constructor_does_not_brick_the_card() -> None:
    source = (
        "from smarthydra.card.applet import APDU, Applet, PersistentBool\n"
        "class Spinner(Applet):\n"
        "    armed = PersistentBool()\n"
        "    def __init__(self):\n"
        "        while self.armed:\n"
        "            pass\n"
        "    def process(self, apdu: APDU) -> bytes | None:\n"
        "        if not apdu.is_selecting:\n"
        "            self.armed = True\n"
        "        return None\n"
    )
    spinner = AppletPackage.build(source, aid=SNIPPET_LF, name="spinner",
                                  applets={"Spinner": [SNIPPET_MODULE]})
    card = Card(MemoryBacking(), CardProfile("restricted-only", resolver=package_resolver()),
                rng=DeterministicRandom(b"x"))
    card.power_on()
    with entered(RUNTIME_CONTEXT, None):
        register_package(card.manager, spinner)
        card.manager.install(SNIPPET_LF, SNIPPET_MODULE, SNIPPET,
                             privileges=privileges_of(Privilege.CARD_RESET))
        register_package(card.manager, purse_package())
        card.manager.install(PURSE_LF, PURSE_MODULE, PURSE, params=(100).to_bytes(4, "big"))
    card.reset()
    assert card.runtime.selected_on(0) == SNIPPET  # selected at power-up
    assert send(card, 0x80, 0x01).sw == 0x9000  # the default applet arms its trap
    card.reset()  # powers up although the default applet cannot be constructed
    assert card.runtime.selected_on(0) is None
    assert send(card, 0x80, 0x01).sw == 0x6986
    assert purse_state(card) == (100, 0)


# --- power cycles ------------------------------------------------------------------------


def test_restricted_load_files_are_rebuilt_from_nvm_at_power_up() -> None:
    backing = MemoryBacking()
    card = sandbox_card(backing)
    select(card, PURSE)
    assert send(card, 0x80, 0x30, data=(23).to_bytes(4, "big"), ne=256).sw == 0x9000
    card.power_off()

    again = Card(backing, SANDBOX_PROFILE, rng=DeterministicRandom(b"other"))
    again.power_on()
    rebuilt = again.manager.load_file_code(PURSE_LF)
    assert rebuilt is not None and rebuilt.name == "purse"
    assert "_sh_package" in vars(rebuilt.modules[PURSE_MODULE])  # restricted, not ROM code
    assert purse_state(again) == (123, 1)
    select(again, HOSTILE)
    assert send(again, 0x80, 0x40).sw == 0x6F00  # still restricted after the power cycle
    assert "AppletRunaway" in again.runtime.last_error
    entry = next(lf for lf in again.manager.load_files() if lf.aid == PURSE_LF)
    assert not entry.rom


def test_a_damaged_stored_package_disables_only_its_load_file() -> None:
    backing = MemoryBacking()
    card = sandbox_card(backing)
    with entered(RUNTIME_CONTEXT, None):
        card.manager.write_load_file_data(PURSE_LF, PACKAGE_CELL, b"\xa1damaged")
    card.reset()
    assert select(card, PURSE).sw == 0x6A82
    select(card, HOSTILE)
    assert send(card, 0x80, 0x72, ne=256).data == b"ok"
    assert counter_state(card) == (0, 0)


def test_resolver_falls_back_for_other_load_files() -> None:
    seen: list[bytes] = []

    def fallback(aid: bytes, read: object) -> None:
        seen.append(aid)

    resolver = package_resolver(fallback=fallback)
    assert resolver(b"\xf0\x00\x00\x00\x01", lambda cell: None) is None
    assert seen == [b"\xf0\x00\x00\x00\x01"]


def test_empty_profile_card_with_only_restricted_applets() -> None:
    profile = CardProfile("restricted-only", resolver=package_resolver())
    backing = MemoryBacking()
    card = Card(backing, profile, rng=DeterministicRandom(b"x"))
    card.power_on()
    with entered(RUNTIME_CONTEXT, None):
        register_package(card.manager, purse_package())
        card.manager.install(PURSE_LF, PURSE_MODULE, PURSE, params=(7).to_bytes(4, "big"))
    card.reset()
    assert purse_state(card) == (7, 0)


# --- end to end through the CLI ----------------------------------------------------------


def test_cli_drives_restricted_applets_in_a_card_image(tmp_path: Path) -> None:
    from smarthydra.cli.main import app  # imported here: the CLI is assembled from many modules

    image = tmp_path / "card.img"
    profile = "tests.card.test_sandbox:SANDBOX_PROFILE"
    runner = CliRunner()
    commands = [
        "00A4040007" + HOSTILE.hex(),
        "8040000000",  # loop forever: stopped
        "8072000000",
        "00A4040007" + PURSE.hex(),
        "80300000040000000A00",  # credit 10
    ]
    result = runner.invoke(app, ["card", "apdu", "--image", str(image), "--profile", profile,
                                 "--json", *commands])
    assert result.exit_code == 0, result.output
    responses = json.loads(result.stdout)["responses"]
    assert [r["sw"] for r in responses] == ["9000", "6F00", "9000", "9000", "9000"]
    assert bytes.fromhex(responses[2]["data"]) == b"ok"
    assert responses[4]["data"] == "0000006E00000001"

    # a second power-up from the image: the packages come back from NVM
    result = runner.invoke(app, ["card", "apdu", "--image", str(image), "--profile", profile,
                                 "--json", "00A4040007" + PURSE.hex(), "8034000000"])
    assert result.exit_code == 0, result.output
    responses = json.loads(result.stdout)["responses"]
    assert responses[1] == {"command": "8034000000", "data": "0000006E00000001", "sw": "9000"}

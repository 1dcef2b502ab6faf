"""The card as a PC/SC reader through pcscd + vsmartcard-vpcd: pyscard, opensc-tool and the
``smarthydra card serve --vpcd`` command. Needs pcscd running with vpcd (.ci/pcsc-setup.sh);
skips with the reason otherwise. A file lock keeps parallel workers off the one reader."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthydra.card.examples import COUNTER_AID, CounterIns
from smarthydra.card.transport import InProcessTransport, ProcessTransport
from smarthydra.card.vpcd import VpcdBridge

from .helpers import example_card

pytestmark = pytest.mark.pcsc

READER = "Virtual PCD 00 00"
PORT = int(os.environ.get("SMARTHYDRA_VPCD_PORT", "35963"))
LOCK = Path("/tmp/smarthydra-vpcd.lock")


def _readers() -> list[str]:
    try:
        from smartcard.System import readers
    except ImportError:
        pytest.skip("pyscard is not installed (pip install '.[pcsc]')")
    try:
        return [str(r) for r in readers()]
    except Exception as exc:
        pytest.skip(f"pcscd is not reachable ({exc}); run .ci/pcsc-setup.sh as root")


@pytest.fixture
def reader_lock() -> Iterator[None]:
    if READER not in _readers():
        pytest.skip(f"no {READER!r} reader: pcscd with vsmartcard-vpcd is not running "
                    "(run .ci/pcsc-setup.sh as root)")
    with LOCK.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _wait_for_card(present: bool = True, timeout: float = 10.0) -> None:
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.System import readers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reader = next(r for r in readers() if str(r) == READER)
        connection = reader.createConnection()
        try:
            connection.connect()
            connection.disconnect()
            if present:
                return
        except (NoCardException, CardConnectionException):
            if not present:
                return
        time.sleep(0.1)
    raise AssertionError(f"card {'never appeared' if present else 'never left'} in {READER}")


@pytest.fixture
def bridged(reader_lock: None) -> Iterator[VpcdBridge]:
    bridge = VpcdBridge(InProcessTransport(example_card()), "127.0.0.1", PORT)
    thread = threading.Thread(target=bridge.serve_forever, daemon=True)
    thread.start()
    assert bridge.connected.wait(10), "vpcd did not accept the card"
    _wait_for_card()
    yield bridge
    bridge.stop()
    thread.join(10)
    _wait_for_card(present=False)


def test_pyscard_talks_to_the_card(bridged: VpcdBridge) -> None:
    from smartcard.System import readers

    reader = next(r for r in readers() if str(r) == READER)
    connection = reader.createConnection()
    connection.connect()
    try:
        assert bytes(connection.getATR()) == example_card().atr
        data, sw1, sw2 = connection.transmit([0x00, 0xA4, 0x04, 0x00, len(COUNTER_AID),
                                              *COUNTER_AID])
        assert (sw1, sw2) == (0x90, 0x00)
        data, sw1, sw2 = connection.transmit([0x80, CounterIns.ADD, 0, 0, 4, 0, 0, 0, 9, 0])
        assert (bytes(data), sw1, sw2) == (bytes.fromhex("0000000900000001"), 0x90, 0x00)
        long = list(range(256)) * 2  # extended-length is not needed: 61xx + GET RESPONSE
        data, sw1, sw2 = connection.transmit([0x80, CounterIns.ECHO, 0, 0, 200, *long[:200],
                                              0])
        assert (sw1, sw2) == (0x90, 0x00) and data == long[:200]
        data, sw1, sw2 = connection.transmit([0x80, 0x99, 0, 0])
        assert (sw1, sw2) == (0x6D, 0x00)
    finally:
        connection.disconnect()


def test_opensc_tool_lists_reader_atr_and_sends_apdus(bridged: VpcdBridge) -> None:
    tool = shutil.which("opensc-tool")
    if tool is None:
        pytest.skip("opensc-tool is not installed")
    result = subprocess.run(
        [tool, "--list-readers"], capture_output=True, text=True, timeout=30)
    assert READER in result.stdout
    result = subprocess.run(
        [tool, "-r", READER, "--atr", "--send-apdu", "00A40400" + "07" + COUNTER_AID.hex(),
         "--send-apdu", "801000000400000005", "--send-apdu", "8012000000"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    atr = ":".join(f"{b:02x}" for b in example_card().atr)
    assert atr in result.stdout
    assert "00 00 00 05 00 00 00 01" in result.stdout
    assert result.stdout.count("SW1=0x90, SW2=0x00") == 3


def test_cli_serve_with_a_separate_card_process(reader_lock: None, tmp_path: Path) -> None:
    """``smarthydra card serve --vpcd`` end to end; the card runs in its own process."""
    from smartcard.System import readers

    image = tmp_path / "card.img"
    cli = Path(sys.executable).parent / "smarthydra"
    if not cli.exists():
        pytest.skip(f"the smarthydra console script is not installed next to {sys.executable}")
    server = subprocess.Popen(
        [str(cli), "card", "serve", "--vpcd",
         f"127.0.0.1:{PORT}", "--image", str(image), "--separate-process"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_card(timeout=20)
        reader = next(r for r in readers() if str(r) == READER)
        connection = reader.createConnection()
        connection.connect()
        connection.transmit([0x00, 0xA4, 0x04, 0x00, len(COUNTER_AID), *COUNTER_AID])
        data, sw1, sw2 = connection.transmit([0x80, CounterIns.ADD, 0, 0, 4, 0, 0, 0, 2, 0])
        assert (bytes(data), sw1, sw2) == (bytes.fromhex("0000000200000001"), 0x90, 0x00)
        connection.disconnect()
    finally:
        server.terminate()
        server.wait(timeout=20)
        for stream in (server.stdout, server.stderr):
            assert stream is not None
            stream.close()
    _wait_for_card(present=False)
    # the image on disk holds the committed state for the next card process
    with ProcessTransport(image) as transport:
        transport.power_on()
        transport.transmit(bytes.fromhex("00A4040007") + COUNTER_AID)
        assert transport.transmit(bytes.fromhex("8012000008")).hex().startswith(
            "00000002000000019000")


def test_gp_card_management_through_pcsc(reader_lock: None, tmp_path: Path) -> None:
    """``card serve --vpcd --test-keys``, then ``card list/load/install --reader`` over PC/SC
    with SCP03 (the GP test keys), then a read-only listing over SCP11b (the certificate the
    card wrote out): SCP11b does not authenticate the host, so it may not manage the card."""
    import json

    from typer.testing import CliRunner

    from smarthydra.card.gp.certificates import parse_certificate_store
    from smarthydra.cli.main import app
    from tests.card.gp.gpcards import NOTE_MODULE_AID, NOTE_PACKAGE_AID, note_package

    cli = Path(sys.executable).parent / "smarthydra"
    if not cli.exists():
        pytest.skip(f"the smarthydra console script is not installed next to {sys.executable}")
    certificate = tmp_path / "scp11b.cert"
    server = subprocess.Popen(
        [str(cli), "card", "serve", "--vpcd", f"127.0.0.1:{PORT}", "--test-keys",
         "--certificate", str(certificate), "--image", str(tmp_path / "gp.img")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runner = CliRunner()
    try:
        _wait_for_card(timeout=20)
        assert parse_certificate_store(certificate.read_bytes())
        package = tmp_path / "note.pkg"
        package.write_bytes(note_package().encode())
        loaded = runner.invoke(app, ["card", "load", str(package), "--reader", READER])
        assert loaded.exit_code == 0, loaded.output
        refused = runner.invoke(app, ["card", "install", NOTE_PACKAGE_AID.hex(),
                                      NOTE_MODULE_AID.hex(), "--reader", READER,
                                      "--scp", "11b"])
        assert refused.exit_code != 0 and "6982" in refused.output, refused.output
        installed = runner.invoke(app, ["card", "install", NOTE_PACKAGE_AID.hex(),
                                        NOTE_MODULE_AID.hex(), "--reader", READER])
        assert installed.exit_code == 0, installed.output
        listed = runner.invoke(app, ["card", "list", "--reader", READER, "--json",
                                     "--scp", "11b"])
        assert listed.exit_code == 0, listed.output
        doc = json.loads(listed.stdout)
        assert NOTE_MODULE_AID.hex().upper() in {a["aid"] for a in doc["applications"]}
    finally:
        server.terminate()
        server.wait(timeout=20)
        for stream in (server.stdout, server.stderr):
            assert stream is not None
            stream.close()
    _wait_for_card(present=False)

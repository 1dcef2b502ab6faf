"""yubikit against ``smarthydra card serve --vpcd --test-keys`` through pcscd, end to end.

The card is served by the CLI in its own OS process; yubikit reaches it through its own PC/SC
connection class (pyscard -> pcscd -> vsmartcard-vpcd -> the CLI's vpcd bridge), and opens
SCP11b with the certificate the CLI wrote. Needs pcscd with vpcd (``.ci/pcsc-setup.sh``).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from yubikit.core.smartcard import ApduError
from yubikit.core.smartcard.scp import KeyRef, Scp03KeyParams, Scp11KeyParams, ScpKid, StaticKeys
from yubikit.securitydomain import SecurityDomainSession

from smarthydra.card.gp import tlv

from .yubikit_link import pcsc_connection, sd_public_key

pytestmark = pytest.mark.pcsc

READER = "Virtual PCD 00 00"
PORT = int(os.environ.get("SMARTHYDRA_VPCD_PORT", "35963"))
LOCK = Path("/tmp/smarthydra-vpcd.lock")  # shared with tests/card/test_pcsc.py


def _readers() -> list[str]:
    try:
        from smartcard.System import readers
    except ImportError:
        pytest.skip("pyscard is not installed (pip install '.[pcsc]')")
    try:
        return [str(r) for r in readers()]
    except Exception as exc:
        pytest.skip(f"pcscd is not reachable ({exc}); run .ci/pcsc-setup.sh as root")


def _card_present() -> bool:
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.System import readers

    reader = next(r for r in readers() if str(r) == READER)
    connection = reader.createConnection()
    try:
        connection.connect()
        connection.disconnect()
        return True
    except (NoCardException, CardConnectionException):
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """``card serve --vpcd --test-keys`` running; yields the certificate file it wrote."""
    if READER not in _readers():
        pytest.skip(f"no {READER!r} reader: run .ci/pcsc-setup.sh as root")
    certificate = tmp_path / "scp11b.cert"
    with LOCK.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        process = subprocess.Popen(
            [sys.executable, "-m", "smarthydra.cli.main", "card", "serve", "--vpcd",
             f"127.0.0.1:{PORT}", "--test-keys", "--certificate", str(certificate),
             "--image", str(tmp_path / "served.img")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not (certificate.exists() and _card_present()):
                if process.poll() is not None or time.monotonic() > deadline:
                    _, err = process.communicate(timeout=10)
                    pytest.fail(f"card serve did not come up: {err.decode()[-400:]}")
                time.sleep(0.1)
            yield certificate
        finally:
            process.terminate()
            process.communicate(timeout=30)
            deadline = time.monotonic() + 10
            while _card_present() and time.monotonic() < deadline:
                time.sleep(0.1)


def test_yubikit_over_pcsc_scp03_put_key_and_scp11b(served: Path) -> None:
    new = StaticKeys(b"\x11" * 16, b"\x22" * 16, b"\x33" * 16)
    with pcsc_connection(READER) as connection:
        session = SecurityDomainSession(connection)
        assert session.get_data(0x0042)[:1] == b"\x42"
        session.authenticate(Scp03KeyParams(KeyRef(ScpKid.SCP03, 0x30), StaticKeys.default()))
        before = session.get_data(0x00E0)
        session.put_key(KeyRef(ScpKid.SCP03, 0x31), new)
    with pcsc_connection(READER) as connection:
        session = SecurityDomainSession(connection)
        session.authenticate(Scp03KeyParams(KeyRef(ScpKid.SCP03, 0x31), new))
        after = session.get_data(0x00E0)
        assert len(tlv.parse_one(after)[0].value) == len(tlv.parse_one(before)[0].value) + 18
    # SCP11b with PK.SD.ECKA from the file the CLI wrote
    public = sd_public_key(served.read_bytes())
    with pcsc_connection(READER) as connection:
        session = SecurityDomainSession(connection)
        session.authenticate(Scp11KeyParams(KeyRef(ScpKid.SCP11b, 0x01), public))
        assert session.get_data(0x00E0) == after
        with pytest.raises(ApduError) as info:  # SCP11b does not authenticate the host
            session.delete_key(kvn=0x30)
        assert info.value.sw == 0x6982

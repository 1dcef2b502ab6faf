"""Ways to reach a card: in process, in a separate OS process, and (in vpcd.py) over vpcd.

Every transport offers the reader's view: power on (ATR), transmit bytes, reset, power off.
:meth:`CardTransport.send` adds what hosts usually want on top: it follows ``61xx`` with
GET RESPONSE and returns one :class:`~.apdu.ResponseAPDU`.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from smarthydra.card.apdu import SW, ClassByte, CommandAPDU, ResponseAPDU
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.vpcd import (
    VPCD_GET_ATR,
    VPCD_POWER_OFF,
    VPCD_POWER_ON,
    VPCD_RESET,
    encode_frame,
)

GET_RESPONSE_LIMIT = 1024  # never follow 61xx forever


class TransportError(Exception):
    """The card could not be reached (process gone, socket closed, ...)."""


class CardProcessDied(TransportError):
    """The card's OS process ended: to the host, the card lost power."""


class CardTransport(abc.ABC):
    @abc.abstractmethod
    def power_on(self) -> bytes:
        """Power the card and return its ATR."""

    @abc.abstractmethod
    def power_off(self) -> None: ...

    @abc.abstractmethod
    def reset(self) -> bytes: ...

    @abc.abstractmethod
    def transmit(self, command: bytes) -> bytes:
        """Raw command APDU bytes in, raw response bytes out."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the transport."""

    def send(self, command: CommandAPDU) -> ResponseAPDU:
        """Transmit and collect a chained response (61xx -> GET RESPONSE)."""
        response = ResponseAPDU.parse(self.transmit(command.encode()))
        data = response.data
        rounds = 0
        while response.sw1 == 0x61 and rounds < GET_RESPONSE_LIMIT:
            cla = ClassByte.with_channel(0x00, ClassByte.decode(command.cla).channel)
            get = CommandAPDU(cla, 0xC0, 0, 0, ne=response.sw2 or 256)
            response = ResponseAPDU.parse(self.transmit(get.encode()))
            data += response.data
            rounds += 1
        return ResponseAPDU(data, response.sw)

    def __enter__(self) -> CardTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessTransport(CardTransport):
    def __init__(self, card: Card) -> None:
        self.card = card

    def power_on(self) -> bytes:
        return self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def reset(self) -> bytes:
        return self.card.reset()

    def transmit(self, command: bytes) -> bytes:
        if not self.card.powered:
            self.card.power_on()
        return self.card.transmit(command)


class PcscTransport(CardTransport):
    """A card in a PC/SC reader, through pyscard (``pip install '.[pcsc]'``)."""

    def __init__(self, reader: str) -> None:
        try:
            from smartcard.System import readers
        except ImportError:
            raise TransportError("pyscard is not installed (pip install '.[pcsc]')") from None
        try:
            available = readers()
        except Exception as exc:  # pyscard raises its own types when pcscd is absent
            raise TransportError(f"PC/SC is not available: {exc}") from None
        matches = [r for r in available if reader in str(r)]
        if not matches:
            names = ", ".join(str(r) for r in available) or "none"
            raise TransportError(f"no PC/SC reader matching {reader!r} (readers: {names})")
        self._connection = matches[0].createConnection()
        self._connected = False

    def power_on(self) -> bytes:
        try:
            if not self._connected:
                self._connection.connect()
                self._connected = True
            return bytes(self._connection.getATR())
        except Exception as exc:
            raise TransportError(f"cannot connect to the card: {exc}") from None

    def power_off(self) -> None:
        if self._connected:
            self._connection.disconnect()
            self._connected = False

    def reset(self) -> bytes:
        self.power_off()
        return self.power_on()

    def transmit(self, command: bytes) -> bytes:
        self.power_on()
        try:
            data, sw1, sw2 = self._connection.transmit(list(command))
        except Exception as exc:
            raise TransportError(f"PC/SC transmit failed: {exc}") from None
        return bytes(data) + bytes((sw1, sw2))

    def close(self) -> None:
        self.power_off()


def resolve_profile(spec: str) -> CardProfile:
    """A card profile by name (``examples``, ``empty``, ``gp``, ``gp-test``) or as
    ``package.module:attribute``."""
    if spec == "examples":
        from smarthydra.card.examples import EXAMPLES_PROFILE

        return EXAMPLES_PROFILE
    if spec == "empty":
        return CardProfile("empty")
    if spec in ("gp", "gp-test"):
        # GlobalPlatform: ISD with the GP test keys (gp-test adds an SCP11b key pair); the
        # example applets' load files are in ROM, ready to be installed
        from smarthydra.card.examples import CLIENT_LOAD_FILE, COUNTER_LOAD_FILE, SIGNER_LOAD_FILE
        from smarthydra.card.gp.profile import gp_profile, gp_test_profile

        rom = (COUNTER_LOAD_FILE, SIGNER_LOAD_FILE, CLIENT_LOAD_FILE)
        return gp_test_profile(load_files=rom) if spec == "gp-test" else gp_profile(
            load_files=rom)
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"unknown card profile {spec!r}: use examples, empty or module:attr")
    try:
        module = importlib.import_module(module_name)
        profile = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load card profile {spec!r}: {exc}") from None
    if callable(profile) and not isinstance(profile, CardProfile):
        profile = profile()
    if not isinstance(profile, CardProfile):
        raise ValueError(f"{spec!r} is not a CardProfile")
    return profile


class ProcessTransport(CardTransport):
    """The card in its own OS process (the chip boundary), vpcd framing over stdin/stdout.

    ``kill()`` is a power cut: the process dies wherever it is, and the next command
    starts a new process that powers the same card image up again.
    """

    def __init__(
        self,
        image: str | os.PathLike[str],
        profile: str = "examples",
        *,
        durable: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.image = Path(image)
        self.profile = profile
        self.durable = durable
        self.extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                return
            _close_streams(self._process)  # a killed card: power it up afresh
        args = [sys.executable, "-m", "smarthydra.card.process", "--image", str(self.image),
                "--profile", self.profile, *self.extra_args]
        if not self.durable:
            args.append("--no-fsync")
        self._process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _exchange(self, payload: bytes, expect_reply: bool) -> bytes:
        self.start()
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(encode_frame(payload))
            process.stdin.flush()
            if not expect_reply:
                return b""
            header = self._read_exactly(process, 2)
            return self._read_exactly(process, int.from_bytes(header, "big"))
        except (OSError, ValueError) as exc:  # broken pipe, or streams closed by a kill
            raise self._died(type(exc).__name__) from None

    def _read_exactly(self, process: subprocess.Popen[bytes], n: int) -> bytes:
        assert process.stdout is not None
        out = b""
        while len(out) < n:
            chunk = process.stdout.read(n - len(out))
            if not chunk:
                raise self._died("end of output")
            out += chunk
        return out

    def _died(self, how: str) -> CardProcessDied:
        process = self._process
        self._process = None
        detail = ""
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                try:
                    detail = process.stderr.read().decode(errors="replace").strip()[-400:]
                except (OSError, ValueError):
                    detail = ""
            _close_streams(process)
        return CardProcessDied(f"card process ended ({how})" + (f": {detail}" if detail else ""))

    def power_on(self) -> bytes:
        self._exchange(bytes((VPCD_POWER_ON,)), expect_reply=False)
        return self._exchange(bytes((VPCD_GET_ATR,)), expect_reply=True)

    def power_off(self) -> None:
        self._exchange(bytes((VPCD_POWER_OFF,)), expect_reply=False)

    def reset(self) -> bytes:
        self._exchange(bytes((VPCD_RESET,)), expect_reply=False)
        return self._exchange(bytes((VPCD_GET_ATR,)), expect_reply=True)

    def transmit(self, command: bytes) -> bytes:
        if len(command) == 1:
            # the framing reads a one-byte frame as a control byte, so a one-byte "APDU"
            # cannot reach the card; answer for it as the card would
            return SW.WRONG_LENGTH.to_bytes(2, "big")
        return self._exchange(command, expect_reply=True)

    def kill(self) -> None:
        """Power cut: SIGKILL the card process (safe to call from another thread)."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            process.kill()
            process.wait()
        _close_streams(process)


def _close_streams(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()

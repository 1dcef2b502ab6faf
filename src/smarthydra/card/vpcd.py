"""The vsmartcard ``vpcd`` protocol: how pcscd's virtual reader talks to a virtual card.

Over TCP (the card connects to the reader driver, port 35963 by default), each message is a
2-byte big-endian length and a payload. A one-byte payload from the reader is a control
byte: 0 power off, 1 power on, 2 reset, 4 "send the ATR"; anything longer is a command
APDU. The card answers the ATR request and every APDU, and nothing else.

The framing and the message handling are sans-I/O; :class:`VpcdBridge` adds the socket.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Protocol

from smarthydra.card.card import CardNotPowered

VPCD_POWER_OFF = 0
VPCD_POWER_ON = 1
VPCD_RESET = 2
VPCD_GET_ATR = 4
DEFAULT_PORT = 35963
MAX_FRAME = 0xFFFF

log = logging.getLogger(__name__)


class VpcdError(Exception):
    """A framing or connection problem on the vpcd link."""


def encode_frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise VpcdError(f"a vpcd frame carries at most {MAX_FRAME} bytes, got {len(payload)}")
    return len(payload).to_bytes(2, "big") + payload


class FrameDecoder:
    """Feed bytes as they arrive; get whole frames back."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 2:
            length = int.from_bytes(self._buffer[:2], "big")
            if len(self._buffer) < 2 + length:
                break
            frames.append(bytes(self._buffer[2 : 2 + length]))
            del self._buffer[: 2 + length]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buffer)


class CardLike(Protocol):
    def power_on(self) -> bytes: ...
    def power_off(self) -> None: ...
    def reset(self) -> bytes: ...
    def transmit(self, command: bytes) -> bytes: ...


def handle_message(card: CardLike, payload: bytes, atr: Callable[[], bytes]) -> bytes | None:
    """Act on one message from the reader; return the reply payload, if one is due."""
    if len(payload) == 1:
        control = payload[0]
        if control == VPCD_POWER_OFF:
            card.power_off()
        elif control == VPCD_POWER_ON:
            card.power_on()
        elif control == VPCD_RESET:
            card.reset()
        elif control == VPCD_GET_ATR:
            return atr()
        else:
            log.warning("vpcd: ignoring unknown control byte %#04x", control)
        return None
    try:
        return card.transmit(payload)
    except CardNotPowered:
        # A real reader gets no answer from an unpowered card; vpcd reports an empty reply to
        # the host as a communication error, which is what it should see.
        log.warning("vpcd: APDU for an unpowered card; answering with an empty reply")
        return b""


class VpcdBridge:
    """Connects a card to pcscd's vpcd reader and serves it until :meth:`stop`.

    If the connection drops (pcscd restarted) or the card's process dies, it reconnects, so
    the reader sees the card removed and inserted again.
    """

    def __init__(
        self,
        card: CardLike,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        retry_interval: float = 0.5,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.retry_interval = retry_interval
        self.on_error = on_error
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._atr = b""
        self._socket: socket.socket | None = None

    def stop(self) -> None:
        self._stop.set()
        sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _current_atr(self) -> bytes:
        if not self._atr:
            self._atr = self.card.power_on()
        return self._atr

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=5)
            except OSError:
                self._stop.wait(self.retry_interval)
                continue
            self._socket = sock
            try:
                self._serve_connection(sock)
            except Exception as exc:  # card process died, link broke: report, reconnect
                if not self._stop.is_set():
                    if self.on_error is not None:
                        self.on_error(exc)
                    log.warning("vpcd: connection ended: %s", exc)
            finally:
                self.connected.clear()
                self._socket = None
                sock.close()
                self._atr = b""
                with contextlib.suppress(Exception):  # the card may already be gone
                    self.card.power_off()
            self._stop.wait(self.retry_interval)

    def _serve_connection(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        decoder = FrameDecoder()
        self.connected.set()
        while not self._stop.is_set():
            data = sock.recv(65536)
            if not data:
                return
            if hasattr(socket, "TCP_QUICKACK"):
                # vpcd writes the length and the APDU separately; acknowledging at once
                # keeps Nagle on its side from waiting out our delayed ACK (~40 ms)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            for payload in decoder.feed(data):
                if len(payload) == 1 and payload[0] in (VPCD_POWER_ON, VPCD_RESET):
                    self._atr = b""
                reply = handle_message(self.card, payload, self._current_atr)
                if len(payload) == 1 and payload[0] in (VPCD_POWER_ON, VPCD_RESET):
                    self._current_atr()
                if reply is not None:
                    sock.sendall(encode_frame(reply))

"""Our card as a yubikit ``SmartCardConnection``: the bridge to an independent GP host stack.

Yubico's ``yubikit`` (PyPI ``yubikey-manager``) implements GlobalPlatform SCP03 and SCP11 on the
host side (``yubikit.core.smartcard.scp``) and a ``SecurityDomainSession`` for key management.
It talks to a card through a ``SmartCardConnection``: ``send_and_receive(apdu) -> (data, sw)``.

* :class:`CardLink` presents any ``transmit(bytes) -> bytes`` (an in-process card, a card
  process, a vpcd socket) as that connection, and records the traffic;
* :func:`pcsc_connection` opens the reader through yubikit's own PC/SC connection class
  (``ykman.pcsc.ScardSmartCardConnection``, pyscard underneath), so nothing of ours sits
  between yubikit and pcscd.

The link passes bytes through unchanged: it neither follows ``61xx`` (yubikit does that with
its own GET RESPONSE) nor rewrites anything, or the test would not show what yubikit sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec
from yubikit.core import TRANSPORT
from yubikit.core.smartcard import SmartCardConnection

from smarthydra.card.gp.certificates import parse_certificate_store

Transmit = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Exchange:
    command: bytes
    response: bytes

    @property
    def sw(self) -> int:
        return int.from_bytes(self.response[-2:], "big")


@dataclass
class CardLink(SmartCardConnection):
    """A yubikit smart-card connection over ``transmit``.

    ``transport``: NFC makes yubikit send short APDUs (with command chaining); USB makes it
    send extended-length APDUs, as it does to a YubiKey over USB.
    """

    transmit: Transmit
    link_transport: TRANSPORT = TRANSPORT.NFC
    traffic: list[Exchange] = field(default_factory=list)
    closed: bool = False

    @property
    def transport(self) -> TRANSPORT:
        return self.link_transport

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        response = self.transmit(bytes(apdu))
        if len(response) < 2:
            raise ConnectionError(f"card answered {response.hex()} without a status word")
        self.traffic.append(Exchange(bytes(apdu), response))
        return response[:-2], int.from_bytes(response[-2:], "big")

    def close(self) -> None:
        self.closed = True


def pcsc_connection(reader_name: str) -> SmartCardConnection:
    """yubikit's own PC/SC connection to the reader called ``reader_name``."""
    from smartcard.System import readers
    from ykman.pcsc import ScardSmartCardConnection

    reader = next((r for r in readers() if str(r) == reader_name), None)
    if reader is None:
        raise LookupError(f"no PC/SC reader {reader_name!r}")
    connection: SmartCardConnection = ScardSmartCardConnection(  # type: ignore[no-untyped-call]
        reader.createConnection())
    return connection


def sd_public_key(certificate_store: bytes) -> ec.EllipticCurvePublicKey:
    """PK.SD.ECKA from a GP certificate store (BF21 with 7F21 certificates; leaf last).

    yubikit reads only X.509 certificate stores, so the key it needs for SCP11b comes from
    here (see docs/interop.md)."""
    return parse_certificate_store(certificate_store)[-1].public_key

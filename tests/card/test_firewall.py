"""Every firewall rule: cross-context access denied, shareable calls switch context,
previous-context AID, clear-on-deselect transients, same-context access allowed."""

from __future__ import annotations

from typing import Any

import pytest

from smarthydra.card.applet import APDU, Applet, ClearEvent, ISOException, PersistentInt
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.examples import (
    CLIENT_AID,
    SIGNER_AID,
    ClientIns,
    SignerIns,
)
from smarthydra.card.firewall import (
    Context,
    SecurityException,
    Shareable,
    active_context,
    entered,
)
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.registry import LoadFile
from smarthydra.card.rng import DeterministicRandom
from smarthydra.card.runtime import CardManager
from smarthydra.crypto import primitives

from .helpers import example_card, select, send

SERVER_LF, SERVER_MOD, SERVER = (bytes.fromhex(h) for h in ("A000000100", "A000000101",
                                                           "A00000010101"))
TWIN = bytes.fromhex("A00000010102")  # second instance in the server's load file
CLIENT_LF, CLIENT_MOD, CLIENT = (bytes.fromhex(h) for h in ("A000000200", "A000000201",
                                                           "A00000020101"))
SEEN: dict[str, Any] = {}


class Service(Shareable):
    interface = frozenset({"ping", "leak_applet", "touch_transient", "poke", "whoami"})

    def __init__(self, owner: ServerApplet) -> None:
        self._owner = owner
        self.secret = b"server-secret"

    def ping(self) -> bytes:
        SEEN["context_in_call"] = active_context()
        SEEN["caller"] = self._owner.card.previous_context_aid()
        self._owner.secret_field += 1  # the server reaches its own state during the call
        return b"pong"

    def leak_applet(self) -> ServerApplet:
        return self._owner

    def touch_transient(self) -> int:
        return self._owner.scratch[0]

    def poke(self, obj: Any) -> Any:
        return obj.secret_field  # the server may not reach into the client's objects

    def whoami(self) -> bytes:
        return self._owner.card.previous_context_aid() or b""

    def not_shared(self) -> bytes:
        return b"private"


class ServerApplet(Applet):
    secret_field = PersistentInt(size=4)

    def __init__(self) -> None:
        self.scratch = self.card.make_transient(4, ClearEvent.ON_DESELECT)
        self.reset_scratch = self.card.make_transient(4, ClearEvent.ON_RESET)
        self.service = Service(self)
        self.key = self.card.ec_key("k")

    def get_shareable(self, client_aid: bytes | None, parameter: int) -> Shareable | None:
        SEEN["asked_by"] = client_aid
        return self.service if parameter == 0 else None

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        if apdu.ins == 0x01:  # write both transients
            self.scratch[0:4] = apdu.data
            self.reset_scratch[0:4] = apdu.data
            return None
        if apdu.ins == 0x02:
            return bytes(self.scratch) + bytes(self.reset_scratch)
        if apdu.ins == 0x03:  # same-context access to the twin instance's object
            twin = self.card.lookup_shareable(TWIN, 1)  # refused: parameter 1
            assert twin is None
            return (SEEN["twin_object"].secret_field).to_bytes(4, "big")
        if apdu.ins == 0x04:
            SEEN["twin_object"] = self
            return None
        if apdu.ins == 0x05:
            return self.key.generate()
        raise ISOException(0x6D00)


class ClientApplet(Applet):
    secret_field = PersistentInt(7, size=4)

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        service = self.card.lookup_shareable(SERVER, 0)
        assert service is not None
        action = apdu.ins
        try:
            if action == 0x10:
                return service.ping()  # type: ignore[attr-defined, no-any-return]
            if action == 0x11:  # field of another context's applet object
                applet = service.leak_applet()  # type: ignore[attr-defined]
                return applet.secret_field.to_bytes(4, "big")  # type: ignore[no-any-return]
            if action == 0x12:  # method of another context's applet object
                applet = service.leak_applet()  # type: ignore[attr-defined]
                applet.process(apdu)
                return b"reached"
            if action == 0x13:  # write a field of another context's object
                applet = service.leak_applet()  # type: ignore[attr-defined]
                applet.secret_field = 99
                return b"wrote"
            if action == 0x14:  # a non-interface method of the shareable
                return service.not_shared()  # type: ignore[attr-defined, no-any-return]
            if action == 0x15:  # a plain attribute of the shareable
                return service.secret  # type: ignore[attr-defined, no-any-return]
            if action == 0x16:  # clear-on-deselect transient of a non-selected context
                return bytes((service.touch_transient(),))  # type: ignore[attr-defined]
            if action == 0x17:  # server given the client's own object
                return service.poke(self)  # type: ignore[attr-defined, no-any-return]
            if action == 0x18:
                return service.whoami()  # type: ignore[attr-defined, no-any-return]
            if action == 0x19:  # another context's key handle
                applet = service.leak_applet()  # type: ignore[attr-defined]
                return applet.key.sign(b"x")  # type: ignore[no-any-return]
        except SecurityException as exc:
            SEEN["denied"] = str(exc)
            raise ISOException(0x6982, "firewall") from None
        raise ISOException(0x6D00)


def _personalize(manager: CardManager) -> None:
    if manager.entry(SERVER) is None:
        manager.install(SERVER_LF, SERVER_MOD, SERVER)
        manager.install(SERVER_LF, SERVER_MOD, TWIN)
        manager.install(CLIENT_LF, CLIENT_MOD, CLIENT)


PROFILE = CardProfile(
    "firewall-test",
    load_files=(
        LoadFile(SERVER_LF, {SERVER_MOD: ServerApplet}, "server"),
        LoadFile(CLIENT_LF, {CLIENT_MOD: ClientApplet}, "client"),
    ),
    personalize=_personalize,
)


@pytest.fixture
def card() -> Card:
    SEEN.clear()
    card = Card(MemoryBacking(), PROFILE, rng=DeterministicRandom(b"fw"))
    card.power_on()
    return card


def client_call(card: Card, ins: int) -> tuple[bytes, int]:
    assert select(card, CLIENT).sw == 0x9000
    response = send(card, 0x80, ins, ne=256)
    return response.data, response.sw


def test_shareable_call_switches_context_and_reports_caller(card: Card) -> None:
    assert client_call(card, 0x10) == (b"pong", 0x9000)
    assert SEEN["asked_by"] == CLIENT
    assert SEEN["caller"] == CLIENT
    context = SEEN["context_in_call"]
    assert isinstance(context, Context) and context.package_aid == SERVER_LF
    assert client_call(card, 0x18) == (CLIENT, 0x9000)


def test_previous_context_is_none_when_the_runtime_calls(card: Card) -> None:
    # selected directly, the server's own process sees no previous applet
    class Probe(Applet):
        def process(self, apdu: APDU) -> bytes | None:
            return self.card.previous_context_aid() or b"none"

    probe_lf = LoadFile(bytes.fromhex("A000000300"), {bytes.fromhex("A000000301"): Probe})
    card.manager.register_load_file(probe_lf)
    card.manager.install(probe_lf.aid, bytes.fromhex("A000000301"), bytes.fromhex("A00000030101"))
    select(card, bytes.fromhex("A00000030101"))
    assert send(card, 0x80, 0x00, ne=256).data == b"none"


@pytest.mark.parametrize("ins", [0x11, 0x12, 0x13, 0x14, 0x15, 0x19])
def test_cross_context_access_denied(card: Card, ins: int) -> None:
    data, sw = client_call(card, ins)
    assert sw == 0x6982 and data == b""
    assert "firewall" in SEEN["denied"]


def test_cross_context_write_did_not_happen(card: Card) -> None:
    client_call(card, 0x13)
    assert card.runtime.nvm.read(f"a/{SERVER.hex()}/secret_field") is None


def test_server_cannot_reach_client_object_passed_to_it(card: Card) -> None:
    assert client_call(card, 0x17)[1] == 0x6982


def test_clear_on_deselect_transient_inaccessible_from_non_selected_context(card: Card) -> None:
    select(card, SERVER)
    assert send(card, 0x80, 0x01, data=b"\x01\x02\x03\x04").sw == 0x9000
    assert send(card, 0x80, 0x02, ne=256).data == b"\x01\x02\x03\x04" * 2
    # the client is selected: the server's clear-on-deselect array is out of reach
    assert client_call(card, 0x16)[1] == 0x6982
    # and it was cleared when the server was deselected; the clear-on-reset one was not
    select(card, SERVER)
    assert send(card, 0x80, 0x02, ne=256).data == bytes(4) + b"\x01\x02\x03\x04"
    card.reset()
    select(card, SERVER)
    assert send(card, 0x80, 0x02, ne=256).data == bytes(8)


def test_same_context_access_allowed(card: Card) -> None:
    select(card, TWIN)
    send(card, 0x80, 0x04)  # the twin publishes its own object
    select(card, SERVER)  # same load file, same context: direct access is fine
    response = send(card, 0x80, 0x03, ne=256)
    assert response.sw == 0x9000 and response.data == bytes(4)


def test_host_code_in_a_foreign_context_is_denied(card: Card) -> None:
    server = card.runtime.applet(SERVER)
    assert server is not None
    foreign = Context("intruder", bytes.fromhex("B000000000"))
    with entered(foreign, None), pytest.raises(SecurityException):
        _ = server.secret_field
    with entered(foreign, None), pytest.raises(SecurityException):
        server.scratch[0] = 1


def test_example_signer_shares_only_with_its_client() -> None:
    card = example_card()
    select(card, SIGNER_AID)
    public = send(card, 0x80, SignerIns.GENERATE, ne=256).data
    select(card, CLIENT_AID)
    signature = send(card, 0x80, ClientIns.SIGN_VIA_SERVER, data=b"meter reading", ne=256)
    assert signature.sw == 0x9000
    key = primitives.public_key_from_xy(public)
    assert primitives.ecdsa_verify(key, b"meter reading", signature.data)
    assert send(card, 0x80, ClientIns.WHO_AM_I_TO_SERVER, ne=256).data == CLIENT_AID
    select(card, SIGNER_AID)
    assert send(card, 0x80, SignerIns.USAGE, ne=256).data == b"\x00\x00\x00\x01"

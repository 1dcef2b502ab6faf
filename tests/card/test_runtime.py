"""Runtime behaviour over APDUs: selection, channels, chaining, GET RESPONSE, status words,
transactions, keys, persistence and the seams for security domains."""

from __future__ import annotations

from pathlib import Path

import pytest

from smarthydra.card.apdu import CommandAPDU, ResponseAPDU
from smarthydra.card.applet import APDU, Applet, ISOException
from smarthydra.card.card import Card, CardNotPowered, CardProfile
from smarthydra.card.examples import (
    COUNTER_AID,
    COUNTER_LOAD_FILE_AID,
    COUNTER_MODULE_AID,
    EXAMPLES_PROFILE,
    SIGNER_AID,
    CounterIns,
    SignerIns,
)
from smarthydra.card.memory import CorruptImage, FileBacking, MemoryBacking
from smarthydra.card.registry import (
    LifeCycle,
    LoadFile,
    Privilege,
    RegistryError,
    privileges_of,
)
from smarthydra.card.rng import DeterministicRandom
from smarthydra.card.runtime import CardConfig
from smarthydra.card.transport import InProcessTransport
from smarthydra.crypto import primitives

from .helpers import counter_state, example_card, select, send

U32 = (7).to_bytes(4, "big")


def test_atr_has_a_valid_check_byte() -> None:
    atr = example_card().atr
    assert atr[0] == 0x3B
    check = 0
    for byte in atr[1:]:
        check ^= byte
    assert check == 0 and atr.endswith(b"smarthydra" + atr[-1:])


def test_default_applet_is_selected_at_power_up() -> None:
    card = example_card()
    assert send(card, 0x80, CounterIns.ADD, data=U32, ne=256).data == U32 + b"\x00\x00\x00\x01"


def test_select_errors() -> None:
    card = example_card()
    assert select(card, bytes.fromhex("A0000000FF")).sw == 0x6A82
    assert send(card, 0x00, 0xA4, 0x04, 0x01, COUNTER_AID).sw == 0x6A86
    assert select(card, COUNTER_AID[:5]).sw == 0x9000  # partial name matches
    assert send(card, 0x00, 0xA4, 0x04, 0x00, bytes(17)).sw == 0x6700


def test_status_words_for_bad_commands() -> None:
    card = example_card()
    assert send(card, 0x80, 0x99).sw == 0x6D00  # INS not supported
    assert send(card, 0x00, CounterIns.READ).sw == 0x6E00  # applet wants CLA 80
    assert ResponseAPDU.parse(card.transmit(b"\xFF\xA4\x04\x00")).sw == 0x6E00
    assert ResponseAPDU.parse(card.transmit(b"\x00\xA4")).sw == 0x6700
    assert send(card, 0x80, CounterIns.ADD, data=b"\x01").sw == 0x6700
    assert send(card, 0x80, CounterIns.ADD_THEN_FAIL, data=U32).sw == 0x6985
    assert send(card, 0x81, CounterIns.READ).sw == 0x6881  # channel 1 not open
    assert send(card, 0x00, 0xC0, ne=16).sw == 0x6985  # nothing to GET RESPONSE
    select(card, SIGNER_AID)
    assert send(card, 0x80, SignerIns.GET_PUBLIC, ne=64).sw == 0x6985  # no key yet
    assert send(card, 0x80, SignerIns.SET_AES, data=b"short").sw == 0x6A80


def test_no_applet_selected() -> None:
    card = example_card()
    select(card, COUNTER_AID)
    card.manager.delete(COUNTER_AID)
    assert send(card, 0x80, CounterIns.READ).sw == 0x6986


def test_transactions_commit_abort_and_automatic_abort() -> None:
    card = example_card()
    send(card, 0x80, CounterIns.ADD, data=U32)
    assert send(card, 0x80, CounterIns.ADD_THEN_FAIL, data=U32).sw == 0x6985
    leave_open = send(card, 0x80, CounterIns.ADD_LEAVE_OPEN, data=U32, ne=256)
    assert leave_open.sw == 0x9000 and leave_open.data[:4] == (14).to_bytes(4, "big")
    assert counter_state(card) == (7, 1)  # both were rolled back
    over = send(card, 0x80, CounterIns.ADD, data=b"\xff\xff\xff\xff")
    assert over.sw == 0x6985 and counter_state(card) == (7, 1)


def test_commit_capacity_limit() -> None:
    card = example_card()
    assert send(card, 0x80, CounterIns.SET_BLOB, data=bytes(3000)).sw == 0x9000
    # replacing a 3000-byte blob journals 3000 bytes: fine; 5000 new bytes journal the old
    assert send(card, 0x80, CounterIns.SET_BLOB, data=bytes(5000)).sw == 0x9000
    big = send(card, 0x80, CounterIns.SET_BLOB, data=b"\x01" * 10)
    assert big.sw == 0x6A84  # journalling the 5000-byte old value exceeds 4096
    assert card.runtime.nvm.read(f"a/{COUNTER_AID.hex()}/blob") == bytes(5000)


def test_command_chaining_and_get_response() -> None:
    card = example_card()
    payload = bytes(range(256)) * 3
    for i in range(0, len(payload) - 200, 200):
        assert send(card, 0x90, CounterIns.ECHO, data=payload[i:i + 200]).sw == 0x9000
    last = send(card, 0x80, CounterIns.ECHO, data=payload[600:], ne=256)
    assert last.sw == 0x6100 and last.data == payload[:256]  # 512 more: 61 00
    rest = send(card, 0x00, 0xC0, ne=256)
    assert rest.sw == 0x6100 and rest.data == payload[256:512]
    tail = send(card, 0x00, 0xC0, ne=256)
    assert tail.sw == 0x9000 and tail.data == payload[512:]
    # through the host helper the same thing is one call
    transport = InProcessTransport(card)
    assert transport.send(CommandAPDU(0x80, CounterIns.ECHO, 0, 0, payload[:300], ne=100)
                          ).data == payload[:300]


def test_chaining_errors() -> None:
    card = example_card()
    assert send(card, 0x90, CounterIns.ECHO, data=b"a").sw == 0x9000
    assert send(card, 0x80, CounterIns.READ).sw == 0x6883  # different header ends the chain
    assert send(card, 0x80, CounterIns.READ, ne=256).sw == 0x9000
    small = example_card(profile=CardProfile("small", EXAMPLES_PROFILE.load_files,
                                             EXAMPLES_PROFILE.personalize,
                                             CardConfig(max_command_data=300)))
    assert send(small, 0x90, CounterIns.ECHO, data=bytes(200)).sw == 0x9000
    assert send(small, 0x90, CounterIns.ECHO, data=bytes(200)).sw == 0x6700


def test_extended_length() -> None:
    card = example_card()
    payload = bytes(range(256)) * 10
    response = ResponseAPDU.parse(card.transmit(
        CommandAPDU(0x80, CounterIns.ECHO, 0, 0, payload, ne=65536).encode()))
    assert response.sw == 0x9000 and response.data == payload


def test_logical_channels() -> None:
    card = example_card()
    opened = send(card, 0x00, 0x70, 0x00, 0x00, ne=1)
    assert opened == ResponseAPDU(b"\x01", 0x9000)
    # the counter is multiselectable and default: selected on the new channel too
    assert send(card, 0x81, CounterIns.ADD, data=U32, ne=256).sw == 0x9000
    assert send(card, 0x00, 0x70, 0x00, 0x03).sw == 0x9000  # open channel 3 by number
    assert send(card, 0x00, 0x70, 0x00, 0x03).sw == 0x6985  # already open
    assert send(card, 0x00, 0x70, 0x00, 0x09).sw == 0x6881  # card offers 4
    assert select(card, SIGNER_AID, 0x03).sw == 0x9000
    assert select(card, SIGNER_AID, 0x01).sw == 0x6985  # not multiselectable
    assert send(card, 0x00, 0x70, 0x00, 0x00, ne=1).data == b"\x02"
    assert send(card, 0x00, 0x70, 0x00, 0x00, ne=1).sw == 0x6A81  # none left
    assert send(card, 0x00, 0x70, 0x80, 0x00).sw == 0x6A81  # the basic channel stays
    assert send(card, 0x00, 0x70, 0x80, 0x03).sw == 0x9000
    assert send(card, 0x83, SignerIns.USAGE).sw == 0x6881
    assert send(card, 0x00, 0x70, 0x40, 0x00).sw == 0x6A86
    card.reset()
    assert send(card, 0x81, CounterIns.READ).sw == 0x6881  # reset closes channels


def test_keys_in_the_card() -> None:
    card = example_card()
    select(card, SIGNER_AID)
    scalar = bytes.fromhex("E4A6CFB431471CFCAE491FD566D19C87082CF9FA7722D7FA24B2B3F5669DBEFB")
    public = send(card, 0x80, SignerIns.IMPORT, data=scalar, ne=256).data
    expected = primitives.private_key_from_scalar(scalar)
    assert public == primitives.public_key_to_xy(expected.public_key())
    signature = send(card, 0x80, SignerIns.SIGN, data=b"abc", ne=256).data
    assert primitives.ecdsa_verify(expected.public_key(), b"abc", signature)
    peer = primitives.private_key_from_scalar(bytes(31) + b"\x05")
    peer_xy = primitives.public_key_to_xy(peer.public_key())
    z = send(card, 0x80, SignerIns.ECDH, data=peer_xy, ne=256).data
    assert z == primitives.ecdh(peer, expected.public_key())
    assert send(card, 0x80, SignerIns.ECDH, data=bytes(64), ne=256).sw == 0x6A80
    # no command returns the private scalar: it is only in NVM
    cells = card.runtime.nvm.snapshot()
    assert scalar in cells.values()


def test_deterministic_rng_gives_repeatable_keys() -> None:
    keys = []
    for _ in range(2):
        card = example_card(seed=b"same")
        select(card, SIGNER_AID)
        keys.append(send(card, 0x80, SignerIns.GENERATE, ne=256).data)
    other = example_card(seed=b"other")
    select(other, SIGNER_AID)
    assert keys[0] == keys[1] != send(other, 0x80, SignerIns.GENERATE, ne=256).data


def test_state_survives_process_restart_via_image_file(tmp_path: Path) -> None:
    image = tmp_path / "card.img"
    card = example_card(FileBacking(image))
    send(card, 0x80, CounterIns.ADD, data=U32)
    again = example_card(FileBacking(image))
    assert counter_state(again) == (7, 1)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_corrupt_image_is_a_clear_error(tmp_path: Path) -> None:
    image = tmp_path / "card.img"
    example_card(FileBacking(image))
    raw = bytearray(image.read_bytes())
    raw[-40] ^= 0xFF
    image.write_bytes(bytes(raw))
    with pytest.raises(CorruptImage, match=r"checksum|not a card image|malformed"):
        example_card(FileBacking(image))
    image.write_bytes(b"not cbor at all \xff")
    with pytest.raises(CorruptImage):
        example_card(FileBacking(image))


def test_unpowered_card() -> None:
    card = Card(MemoryBacking(), EXAMPLES_PROFILE)
    with pytest.raises(CardNotPowered):
        card.transmit(b"\x00\xa4\x04\x00")


def test_registry_life_cycle_and_privileges() -> None:
    card = example_card()
    manager = card.manager
    entry = manager.entry(COUNTER_AID)
    assert entry is not None and entry.has(Privilege.CARD_RESET) and entry.selectable
    assert len(entry.privileges) == 3 and entry.life_cycle == LifeCycle.SELECTABLE
    manager.set_life_cycle(COUNTER_AID, LifeCycle.SELECTABLE | LifeCycle.LOCKED)
    assert select(card, COUNTER_AID).sw == 0x6A82  # locked applets cannot be selected
    manager.set_life_cycle(COUNTER_AID, LifeCycle.SELECTABLE)
    assert select(card, COUNTER_AID).sw == 0x9000
    # a second instance from the same load file, installed at run time
    second = bytes.fromhex("F0534859010102")
    manager.install(COUNTER_LOAD_FILE_AID, COUNTER_MODULE_AID, second, params=b"\x00\x00\x00\x05")
    assert select(card, second).sw == 0x9000
    assert send(card, 0x80, CounterIns.ADD, data=U32).sw == 0x6985  # its limit is 5
    with pytest.raises(RegistryError):
        manager.install(COUNTER_LOAD_FILE_AID, COUNTER_MODULE_AID, second)
    with pytest.raises(RegistryError):
        manager.delete_load_file(COUNTER_LOAD_FILE_AID)  # still has instances
    manager.delete(second)
    assert select(card, second).sw == 0x6A82
    assert not any(c.startswith(f"a/{second.hex()}/") for c in card.runtime.nvm.snapshot())


def test_failed_install_leaves_nothing() -> None:
    card = example_card()
    with pytest.raises(ISOException):
        card.manager.install(SIGNER_AID[:5], bytes.fromhex("F05348590201"),
                             bytes.fromhex("F0534859020199"), params=b"\x02bad")
    assert card.manager.entry(bytes.fromhex("F0534859020199")) is None


class Echo(Applet):
    def process(self, apdu: APDU) -> bytes | None:
        return None if apdu.is_selecting else b"plain:" + apdu.data

    def process_data(self, data: bytes) -> bytes:
        return b"personalised:" + data


class XorLayer:
    """A toy secure channel: XORs data with 0x55 both ways (tests the hook, not crypto)."""

    def unwrap(self, command: CommandAPDU) -> CommandAPDU:
        if command.cla & 0x04 == 0:
            raise ISOException(0x6982, "unprotected command")
        return CommandAPDU(command.cla & ~0x04, command.ins, command.p1, command.p2,
                           bytes(b ^ 0x55 for b in command.data), command.ne)

    def wrap(self, command: CommandAPDU, response: ResponseAPDU) -> ResponseAPDU:
        return ResponseAPDU(bytes(b ^ 0x55 for b in response.data), response.sw)


class Domain(Applet):
    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        if apdu.ins == 0x82:  # "authenticate": open the session
            self.card.set_secure_channel(XorLayer())
            return None
        if apdu.ins == 0xE2:  # forward personalisation data to an associated applet
            return self.card.manager().forward_data(apdu.data[:6], apdu.data[6:])
        if apdu.ins == 0xF2:
            return b"".join(e.aid for e in self.card.manager().entries())
        raise ISOException(0x6D00)


SD_LF, SD_MOD, SD = bytes.fromhex("A000000500"), bytes.fromhex("A000000501"), bytes.fromhex(
    "A00000050101")
APP_LF, APP_MOD, APP = bytes.fromhex("A000000600"), bytes.fromhex("A000000601"), bytes.fromhex(
    "A00000060101")


def sd_card() -> Card:
    def personalize(manager):  # type: ignore[no-untyped-def]
        if manager.entry(SD) is None:
            manager.install(SD_LF, SD_MOD, SD,
                            privileges=privileges_of(Privilege.SECURITY_DOMAIN))
            manager.install(APP_LF, APP_MOD, APP, associated_sd=SD)

    profile = CardProfile("sd", (LoadFile(SD_LF, {SD_MOD: Domain}),
                                 LoadFile(APP_LF, {APP_MOD: Echo})), personalize)
    card = Card(MemoryBacking(), profile, rng=DeterministicRandom(b"sd"))
    card.power_on()
    return card


def test_security_domain_seams() -> None:
    card = sd_card()
    select(card, SD)
    assert send(card, 0x80, 0xF2, ne=256).data == SD + APP
    forwarded = send(card, 0x80, 0xE2, data=APP + b"xyz", ne=256)
    assert forwarded == ResponseAPDU(b"personalised:xyz", 0x9000)
    # an ordinary applet may not manage the card or open a secure channel
    select(card, APP)
    assert send(card, 0x80, 0x00, data=b"hi", ne=256).data == b"plain:hi"


def test_secure_channel_layer_unwraps_and_wraps() -> None:
    card = sd_card()
    select(card, SD)
    assert send(card, 0x80, 0x82).sw == 0x9000
    wrapped = send(card, 0x84, 0xF2, ne=256)  # the listing, XORed by the layer
    assert bytes(b ^ 0x55 for b in wrapped.data) == SD + APP
    assert send(card, 0x80, 0xF2, ne=256).sw == 0x6982  # unprotected: refused, session ends
    assert send(card, 0x84, 0xF2, ne=256).data == SD + APP  # no layer any more


def test_runtime_registered_load_file_and_resolver() -> None:
    loaded: list[bytes] = []

    def resolver(aid: bytes, read):  # type: ignore[no-untyped-def]
        code = read(f"lfd/{aid.hex()}/code")
        loaded.append(code)
        return LoadFile(aid, {APP_MOD: Echo}) if code == b"echo" else None

    backing = MemoryBacking()
    profile = CardProfile("post-issuance", resolver=resolver)
    card = Card(backing, profile)
    card.power_on()
    manager = card.manager
    manager.register_load_file(LoadFile(APP_LF, {APP_MOD: Echo}), rom=False)
    manager.write_load_file_data(APP_LF, "code", b"echo")
    manager.install(APP_LF, APP_MOD, APP)
    fresh = Card(backing, profile)  # power-up in a new "process": classes come from NVM
    fresh.power_on()
    assert loaded == [b"echo"]
    assert select(fresh, APP).sw == 0x9000
    assert send(fresh, 0x80, 0x00, data=b"x", ne=256).data == b"plain:x"

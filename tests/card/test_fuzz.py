"""Malformed APDUs: every one gets a status word; the card never crashes or changes NVM."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smarthydra.card.apdu import ResponseAPDU
from smarthydra.card.examples import COUNTER_AID, SIGNER_AID

from .helpers import example_card, select, send

CARD = example_card()
select(CARD, SIGNER_AID)
send(CARD, 0x80, 0x20)  # a key exists, so key commands get exercised too
BASELINE = CARD.runtime.nvm.snapshot()

# commands that are allowed to change persistent state, which the fuzzer must avoid
WRITING_INS = {0x10, 0x18, 0x1A, 0x20, 0x28, 0x2F, 0x24}

header = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
                   st.integers(0, 255))


def malformed() -> st.SearchStrategy[bytes]:
    random_bytes = st.binary(max_size=300)
    bad_short_lc = st.builds(
        lambda h, lc, body: bytes(h) + bytes((lc,)) + body,
        header, st.integers(1, 255), st.binary(max_size=40))
    bad_extended = st.builds(
        lambda h, lc, body: bytes(h) + b"\x00" + lc.to_bytes(2, "big") + body,
        header, st.integers(0, 65535), st.binary(max_size=40))
    truncated_chain = st.lists(
        st.builds(lambda h, body: bytes((0x90 | h[0] & 0x03,)) + bytes(h[1:]) +
                  bytes((len(body),)) + body, header, st.binary(min_size=1, max_size=40)),
        min_size=1, max_size=4)
    return st.one_of(random_bytes, bad_short_lc, bad_extended,
                     truncated_chain.map(lambda cmds: b"\x00CHAIN" + b"|".join(cmds)))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed(), st.sampled_from([COUNTER_AID, SIGNER_AID]))
def test_malformed_apdus_get_status_words(blob: bytes, aid: bytes) -> None:
    _select(aid)
    commands = blob[6:].split(b"|") if blob.startswith(b"\x00CHAIN") else [blob]
    for command in commands:
        if len(command) > 1 and command[1] in WRITING_INS:
            continue
        response = ResponseAPDU.parse(CARD.transmit(command))
        assert 0x6000 <= response.sw <= 0x9FFF
    assert CARD.runtime.nvm.snapshot() == BASELINE
    # the card still works; a truncated chain ends with 6883 at the next other command
    _select(COUNTER_AID)
    assert send(CARD, 0x80, 0x12, ne=256).sw == 0x9000


def _select(aid: bytes) -> None:
    sw = select(CARD, aid).sw
    if sw == 0x6883:  # the previous example left a chain open: this command ended it
        sw = select(CARD, aid).sw
    assert sw == 0x9000

"""Published STS compliance vectors for DKGA-04 with EA11 (MISTY1): STS Association compliance
test specification STS 531-1-0-04, as published in the open-source NectarAPI tokens-service
(src/test/java/ke/co/nectar/token/domain/token/STSComplianceTests_STS_531_1_0_04_CTSA01.java,
..._CTSA03_CTSA04.java, ..._CTSA05.java, ..._CTSA06.java, ..._CTSA07.java, ..._CTSA09.java,
..._CTSA12.java, ..._CTSA13.java and ..._CTSA14.java). Common set-up of those tests: vending key
abababababababab949494949494949401234567, SGC 123457, TI 01, KRN 1, KT 2, KEN 255, PAN
600727000000000009, base date 1993, RND 5.

They pin down DKGA-04's input layout, MISTY1 as EA11, the 128-bit key change tokens 1 to 4
(CTSA05) and the maximum power limit encoding (CTSA12/CTSA13: the transfer amount's
exponent/mantissa form over watts, rounded up to the next value a token can carry).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smarthydra.prepay.sts_algorithms import (
    BaseDate,
    EncryptionAlgorithm,
    KeyGenerationAlgorithm,
    MeterIdentity,
    dkga04,
    hmac_sha256,
)
from smarthydra.prepay.sts_meter import MeterState, redeem
from smarthydra.prepay.sts_tokens import (
    CreditToken,
    KeyChangeToken3,
    KeyChangeToken4,
    ManagementToken,
    decode_token,
    encode_token,
    tid_for,
)
from smarthydra.prepay.sts_vending import SoftVendingKey, VendingServer

VK = bytes.fromhex("abababababababab949494949494949401234567")
MISTY1 = EncryptionAlgorithm.MISTY1
PAN = "600727000000000009"
PAN_2 = "000001000000000082"


def identity(pan: str = PAN, ti: int = 1, krn: int = 1) -> MeterIdentity:
    return MeterIdentity(pan, "123457", ti, krn, 2)


def decoder_key(pan: str = PAN, ti: int = 1, krn: int = 1,
                base: BaseDate = BaseDate.Y1993) -> bytes:
    return dkga04(identity(pan, ti, krn), base, MISTY1, lambda data: hmac_sha256(VK, data))


def vending(base: BaseDate = BaseDate.Y1993) -> VendingServer:
    return VendingServer(SoftVendingKey(VK), KeyGenerationAlgorithm.DKGA04, MISTY1, base)


@pytest.mark.parametrize(("pan", "krn", "base", "issued", "expected"), [
    (PAN, 1, BaseDate.Y1993, datetime(2004, 3, 1, 13, 0), "59386323472137426967"),  # step 1
    (PAN_2, 1, BaseDate.Y1993, datetime(2004, 3, 1, 13, 20), "25453597494250138964"),  # 5
    (PAN, 4, BaseDate.Y2014, datetime(2014, 1, 1, 8, 0), "13444522537517076834"),  # step 9
    (PAN, 5, BaseDate.Y2035, datetime(2035, 1, 1, 8, 0), "11907826947753213480"),  # step 13
])
def test_ctsa01_04_credit(pan: str, krn: int, base: BaseDate, issued: datetime,
                          expected: str) -> None:
    key = decoder_key(pan, krn=krn, base=base)
    token = CreditToken(0, tid_for(issued.replace(tzinfo=UTC), base), amount_tenths=1, rnd=5)
    assert encode_token(token, key, MISTY1) == expected
    assert decode_token(expected, key, MISTY1) == token


TIMED = [  # (case, PAN, subclass, issue time, value as vended, value carried, token)
    ("CTSA03", PAN, 0, datetime(2004, 3, 28, 9, 1), 1000, 1000, "26521936751055502278"),
    ("CTSA04", PAN, 1, datetime(2004, 3, 28, 9, 15), 0xFFFF, 0xFFFF, "59725289138639529749"),
    ("CTSA04", PAN_2, 1, datetime(2004, 3, 28, 9, 16), 0xFFFF, 0xFFFF,
     "43917986274716482997"),
    ("CTSA06", PAN, 5, datetime(2004, 3, 28, 10, 0), 0, 0, "02455019196514047304"),
    ("CTSA07", PAN, 6, datetime(2004, 3, 28, 10, 20), 10, 10, "16135127146988830614"),
    ("CTSA09", PAN, 1, datetime(2004, 3, 29, 0, 0), 0xFFFF, 0xFFFF, "09791211239166238461"),
    # step 2 is labelled 00:01 but its token carries the TID of 00:02 (CTSA09 exercises a
    # vending system's bump of the TID for several tokens issued within one minute)
    ("CTSA09", PAN, 1, datetime(2004, 3, 29, 0, 2), 0xFFFF, 0xFFFF, "18070818655140104337"),
    ("CTSA09", PAN, 1, datetime(2004, 3, 29, 0, 3), 0xFFFF, 0xFFFF, "59463760341829598722"),
    ("CTSA12", PAN, 0, datetime(2004, 4, 1, 7, 0), 256, 256, "58601433826945463485"),
    ("CTSA12", PAN, 0, datetime(2004, 4, 1, 7, 5), 16383, 16383, "13997395479415026219"),
    ("CTSA12", PAN, 0, datetime(2004, 4, 1, 7, 10), 16384, 16384, "18037738085263294820"),
    ("CTSA12", PAN, 0, datetime(2004, 4, 1, 7, 15), 20000, 20004, "06738975074638745925"),
    ("CTSA12", PAN, 0, datetime(2004, 4, 1, 7, 20), 180223, 180224, "66354091567942569601"),
    ("CTSA12", PAN, 0, datetime(2004, 4, 1, 7, 25), 180224, 180224, "62853351521017859877"),
    ("CTSA12", PAN, 0, datetime(2004, 4, 1, 7, 30), 1818623, 1818624,
     "40984149905900332649"),
    ("CTSA12", PAN, 0, datetime(2004, 4, 1, 7, 35), 1818624, 1818624,
     "26882838654580901052"),
    ("CTSA12", PAN, 0, datetime(2004, 4, 1, 7, 40), 18201624, 18201624,
     "29255956459122361629"),
    ("CTSA13", PAN, 6, datetime(2004, 4, 1, 8, 0), 256, 256, "23509767215559230954"),
    ("CTSA13", PAN, 6, datetime(2004, 4, 1, 8, 10), 16384, 16384, "36304916073545542570"),
    ("CTSA13", PAN, 6, datetime(2004, 4, 1, 8, 15), 20000, 20004, "11066406403853302811"),
    ("CTSA13", PAN, 6, datetime(2004, 4, 1, 8, 20), 180223, 180224, "25512033356036953640"),
    ("CTSA13", PAN, 6, datetime(2004, 4, 1, 8, 40), 18201624, 18201624,
     "60786080230724485517"),
    ("CTSA14", PAN, 1, datetime(2004, 4, 1, 9, 10), 4, 4, "48872720007959408665"),
    ("CTSA14", PAN, 1, datetime(2004, 4, 1, 9, 25), 7, 7, "63506294564247105352"),
]


@pytest.mark.parametrize(("case", "pan", "subclass", "issued", "vended", "carried", "expected"),
                         TIMED)
def test_management_vectors(case: str, pan: str, subclass: int, issued: datetime, vended: int,
                            carried: int, expected: str) -> None:
    server = vending()
    token = server.build(2, subclass, str(vended), issued.replace(tzinfo=UTC), random=5)
    assert token == ManagementToken(subclass, tid_for(issued.replace(tzinfo=UTC),
                                                      BaseDate.Y1993), carried, rnd=5)
    assert server.vend(identity(pan), token).digits == expected, case
    assert decode_token(expected, decoder_key(pan), MISTY1) == token


CTSA05 = [  # (new TI, new KRN, new base date, RO, PAN, expected sections 1..4)
    (2, 1, BaseDate.Y1993, False, PAN, ("34812744915211133004", "46903925208523674737",
                                        "71464563847088610152", "67904239402617643990")),
    (2, 4, BaseDate.Y2014, True, PAN, ("56493341861242437581", "51757380361191578258")),
    (2, 1, BaseDate.Y1993, False, PAN_2, ("29594465524699505864", "09506536067814156547")),
]


@pytest.mark.parametrize(("ti", "krn", "base", "rollover", "pan", "expected"), CTSA05)
def test_ctsa05_04_key_change_tokens(ti: int, krn: int, base: BaseDate, rollover: bool,
                                     pan: str, expected: tuple[str, ...]) -> None:
    change = vending().key_change(identity(pan), identity(pan, ti, krn), rollover=rollover)
    assert change.new_key == decoder_key(pan, ti, krn, base)
    digits = tuple(vend.digits for vend in change.tokens)
    assert len(digits) == 4
    assert digits[: len(expected)] == expected
    # the published set changes the meter's key: enter it in reverse order on a meter
    state = MeterState(decoder_key=decoder_key(pan), algorithm=MISTY1, base_date=BaseDate.Y1993)
    for entered in reversed(digits):
        state, outcome = redeem(state, entered)
    assert outcome.key_changed and state.decoder_key == change.new_key
    assert (state.ti, state.krn, state.sgc, state.ken) == (ti, krn, 123457, 255)
    assert state.base_date is base


def test_ctsa05_04_sections_carry_the_new_sgc() -> None:
    key = decoder_key()
    third = decode_token("71464563847088610152", key, MISTY1)
    fourth = decode_token("67904239402617643990", key, MISTY1)
    assert isinstance(third, KeyChangeToken3) and isinstance(fourth, KeyChangeToken4)
    assert fourth.sgcho << 12 | third.sgclo == 123457

"""The meter side of STS, sans I/O: what accepting a token does to a meter's state.

:func:`redeem` is a pure function from (meter state, 20 digits) to (new state, outcome) or a
specific :class:`~smarthydra.prepay.errors.TokenRefused`. The secure-element applet
(:mod:`smarthydra.prepay.sts_applet`) keeps the state in NVM and writes the changed fields in
one card transaction, so a power cut leaves either the old state or the new one.

Anti-replay follows IEC 62055-41's TID rules: the meter remembers the most recent
``TID_MEMORY`` token identifiers; a TID in memory is refused as used, and once the memory is
full a TID older than all of them is refused as old. A TID whose top 8 bits exceed the key
expiry number (KEN) is refused as key-expired. A key change with the rollover bit set clears
the TID memory and moves the meter to the next base date (the 2024 TID rollover procedure).

Key change tokens are collected in any order until the set is complete: sections 1 and 2 for
a 64-bit (EA07) key, sections 1 to 4 for a 128-bit (EA11) key, whose 3rd and 4th sections also
carry the new supply group code. Entering a section again replaces the earlier copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from smarthydra.prepay.errors import (
    StsKeyError,
    TokenClassUnsupported,
    TokenKeyExpired,
    TokenOld,
    TokenOverflow,
    TokenUsed,
)
from smarthydra.prepay.sts_algorithms import BaseDate, EncryptionAlgorithm
from smarthydra.prepay.sts_tokens import (
    KEY_CHANGE_SUBCLASSES,
    CreditToken,
    KeyChangeToken,
    KeyChangeToken1,
    KeyChangeToken2,
    KeyChangeToken3,
    KeyChangeToken4,
    ManagementSubclass,
    ManagementToken,
    MeterTestToken,
    Token,
    decode_token,
)

TID_MEMORY = 50
CREDIT_REGISTERS = 8  # one per class 0 subclass
REGISTER_LIMIT = (1 << 63) - 1  # tenths of the unit


@dataclass(frozen=True)
class PendingKeyChange:
    """The key change sections entered so far (at most one per subclass, ascending)."""

    sections: tuple[KeyChangeToken, ...] = ()

    def with_section(self, token: KeyChangeToken) -> PendingKeyChange:
        kept = [t for t in self.sections if t.subclass != token.subclass]
        return PendingKeyChange(tuple(sorted((*kept, token), key=lambda t: int(t.subclass))))

    def section(self, subclass: int) -> KeyChangeToken | None:
        return next((t for t in self.sections if t.subclass == subclass), None)


def key_change_subclasses(algorithm: EncryptionAlgorithm) -> tuple[int, ...]:
    """The key change sections a meter with ``algorithm`` needs for a complete new key."""
    if algorithm is EncryptionAlgorithm.MISTY1:
        return KEY_CHANGE_SUBCLASSES
    return KEY_CHANGE_SUBCLASSES[:2]


@dataclass(frozen=True)
class MeterState:
    decoder_key: bytes
    algorithm: EncryptionAlgorithm
    base_date: BaseDate
    krn: int = 1
    kt: int = 2
    ti: int = 1
    ken: int = 255
    sgc: int | None = None  # learnt from a 128-bit key change (tokens 3 and 4)
    credit: tuple[int, ...] = (0,) * CREDIT_REGISTERS
    tids: tuple[int, ...] = ()  # ascending
    max_power_limit: int | None = None
    tariff_rate: int | None = None
    phase_unbalance_limit: int | None = None
    water_meter_factor: int | None = None
    tamper: bool = False
    pending: PendingKeyChange | None = None
    test_requests: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.decoder_key) * 8 != self.algorithm.key_bits:
            raise StsKeyError(
                f"{self.algorithm.name} needs a {self.algorithm.key_bits}-bit decoder key"
            )


@dataclass(frozen=True)
class Outcome:
    token: Token
    credited_tenths: int = 0
    key_changed: bool = False
    description: str = ""


def _check_tid(state: MeterState, tid: int) -> None:
    if tid in state.tids:
        raise TokenUsed(f"TID {tid} was already used")
    if len(state.tids) >= TID_MEMORY and tid < state.tids[0]:
        raise TokenOld(f"TID {tid} is older than every TID the meter remembers")
    if tid >> 16 > state.ken:
        raise TokenKeyExpired(f"TID {tid} is past the key expiry number {state.ken}")


def _remember(state: MeterState, tid: int) -> tuple[int, ...]:
    tids = sorted((*state.tids, tid))
    return tuple(tids[-TID_MEMORY:])


def _management(state: MeterState, token: ManagementToken) -> tuple[MeterState, str]:
    sub = token.subclass
    if sub == ManagementSubclass.SET_MAXIMUM_POWER_LIMIT:
        return replace(state, max_power_limit=token.value), f"maximum power limit {token.value} W"
    if sub == ManagementSubclass.CLEAR_CREDIT:
        registers = list(state.credit)
        if token.value == 0xFFFF:
            registers = [0] * CREDIT_REGISTERS
        elif token.value < CREDIT_REGISTERS:
            registers[token.value] = 0
        else:
            raise TokenClassUnsupported(f"no credit register {token.value}")
        return replace(state, credit=tuple(registers)), f"credit register {token.value} cleared"
    if sub == ManagementSubclass.SET_TARIFF_RATE:
        return replace(state, tariff_rate=token.value), f"tariff rate {token.value}"
    if sub == ManagementSubclass.CLEAR_TAMPER:
        return replace(state, tamper=False), "tamper condition cleared"
    if sub == ManagementSubclass.SET_MAXIMUM_PHASE_POWER_UNBALANCE_LIMIT:
        return replace(state, phase_unbalance_limit=token.value), "phase unbalance limit set"
    return replace(state, water_meter_factor=token.value), f"water meter factor {token.value}"


def _key_change(state: MeterState, token: KeyChangeToken) -> tuple[MeterState, Outcome]:
    needed = key_change_subclasses(state.algorithm)
    if token.subclass not in needed:
        raise TokenClassUnsupported(
            f"key change section {_section_number(token)} is for 128-bit keys; "
            f"this meter's {state.algorithm.name} key takes sections 1 and 2"
        )
    pending = (state.pending or PendingKeyChange()).with_section(token)
    have = [t.subclass for t in pending.sections]
    if len(have) < len(needed):
        entered = replace(state, pending=pending)
        return entered, Outcome(token, description=(
            f"key change section {_section_number(token)} entered "
            f"({len(have)} of {len(needed)})"))
    first = pending.section(ManagementSubclass.KEY_CHANGE_1)
    second = pending.section(ManagementSubclass.KEY_CHANGE_2)
    assert isinstance(first, KeyChangeToken1) and isinstance(second, KeyChangeToken2)
    key = first.nkho
    sgc = state.sgc
    if state.algorithm is EncryptionAlgorithm.MISTY1:
        third = pending.section(ManagementSubclass.KEY_CHANGE_3)
        fourth = pending.section(ManagementSubclass.KEY_CHANGE_4)
        assert isinstance(third, KeyChangeToken3) and isinstance(fourth, KeyChangeToken4)
        key = key << 32 | third.nkmo2
        key = key << 32 | fourth.nkmo1
        sgc = fourth.sgcho << 12 | third.sgclo
    key = key << 32 | second.nklo
    changed = replace(
        state, decoder_key=key.to_bytes(state.algorithm.key_bits // 8, "big"), krn=first.krn,
        kt=first.kt, ti=second.ti, ken=first.kenho << 4 | second.kenlo, sgc=sgc, pending=None,
    )
    if first.ro:
        changed = replace(changed, tids=(), base_date=state.base_date.next())
    return changed, Outcome(token, key_changed=True, description="decoder key changed")


def _section_number(token: KeyChangeToken) -> int:
    return KEY_CHANGE_SUBCLASSES.index(int(token.subclass)) + 1


def redeem(state: MeterState, digits: str) -> tuple[MeterState, Outcome]:
    """Decode ``digits`` with the meter's key and apply it; raises a ``TokenRefused``."""
    token = decode_token(digits, state.decoder_key, state.algorithm)
    if isinstance(token, CreditToken):
        _check_tid(state, token.tid)
        registers = list(state.credit)
        if token.subclass >= CREDIT_REGISTERS:
            raise TokenClassUnsupported(f"credit subclass {token.subclass} is reserved")
        new = registers[token.subclass] + token.amount_tenths
        if new > REGISTER_LIMIT:
            raise TokenOverflow("the credit register would overflow")
        registers[token.subclass] = new
        updated = replace(state, credit=tuple(registers), tids=_remember(state, token.tid))
        return updated, Outcome(token, credited_tenths=token.amount_tenths,
                                description=f"credited {token.amount} (subclass {token.subclass})")
    if isinstance(token, ManagementToken):
        _check_tid(state, token.tid)
        updated, text = _management(state, token)
        return replace(updated, tids=_remember(state, token.tid)), Outcome(token, description=text)
    if isinstance(token, KeyChangeToken1 | KeyChangeToken2 | KeyChangeToken3 | KeyChangeToken4):
        return _key_change(state, token)
    assert isinstance(token, MeterTestToken)
    requests = (*state.test_requests[-15:], token.control)
    return replace(state, test_requests=requests), Outcome(
        token, description=f"test/display control {token.control:#x}"
    )

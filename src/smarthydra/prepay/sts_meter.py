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
    CreditToken,
    KeyChangeToken1,
    KeyChangeToken2,
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
    kenho: int
    krn: int
    ro: int
    kt: int
    nkho: int


@dataclass(frozen=True)
class MeterState:
    decoder_key: bytes
    algorithm: EncryptionAlgorithm
    base_date: BaseDate
    krn: int = 1
    kt: int = 2
    ti: int = 1
    ken: int = 255
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


def _key_change(state: MeterState, token: KeyChangeToken2) -> MeterState:
    pending = state.pending
    assert pending is not None
    if state.algorithm is not EncryptionAlgorithm.STA:
        raise TokenClassUnsupported("a 128-bit key change needs the 3rd/4th section tokens")
    new_key = (pending.nkho << 32 | token.nklo).to_bytes(8, "big")
    changed = replace(
        state, decoder_key=new_key, krn=pending.krn, kt=pending.kt, ti=token.ti,
        ken=pending.kenho << 4 | token.kenlo, pending=None,
    )
    if pending.ro:
        changed = replace(changed, tids=(), base_date=state.base_date.next())
    return changed


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
    if isinstance(token, KeyChangeToken1):
        pending = PendingKeyChange(token.kenho, token.krn, token.ro, token.kt, token.nkho)
        return replace(state, pending=pending), Outcome(token, description="key change 1 of 2")
    if isinstance(token, KeyChangeToken2):
        if state.pending is None:
            raise TokenClassUnsupported("key change token 2 without token 1 first")
        return _key_change(state, token), Outcome(token, key_changed=True,
                                                  description="decoder key changed")
    assert isinstance(token, MeterTestToken)
    requests = (*state.test_requests[-15:], token.control)
    return replace(state, test_requests=requests), Outcome(
        token, description=f"test/display control {token.control:#x}"
    )

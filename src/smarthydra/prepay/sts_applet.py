"""The STS meter applet: a prepayment meter's token decoder on the secure element.

The decoder key, credit registers and TID memory live in the card's NVM. Redeeming a token
reads the state, runs the pure :func:`smarthydra.prepay.sts_meter.redeem`, then writes every
changed field inside one card transaction: the card's undo journal makes the credit register
and the TID memory change together, so a power cut at any write never credits a token twice
and never loses an accepted one.

APDUs (CLA 80):

* ``INS 20`` REDEEM, data: the 20 ASCII digits. Answers class, subclass, credited tenths
  (8 bytes) and a key-changed flag; refusals answer a status word per reason, with the reason
  code (ASCII) as data.
* ``INS 22`` READ STATE: 8 credit registers (8 bytes each), base year (2), KRN, KT, TI, KEN,
  TID count (1), the newest TID (3) and the SGC (3; FFFFFF until a 128-bit key change sets it).

Install parameters: EA (07 or 11), base year (2 bytes), KRN, KT, TI, KEN, decoder key.
"""

from __future__ import annotations

import json
from dataclasses import replace

from smarthydra.card.apdu import SW, CommandAPDU, ResponseAPDU
from smarthydra.card.applet import APDU, Applet, ISOException, PersistentBytes
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.registry import LoadFile
from smarthydra.card.runtime import CardManager
from smarthydra.prepay.errors import (
    PrepayError,
    StsKeyError,
    TokenClassUnsupported,
    TokenCrcError,
    TokenFormatError,
    TokenKeyExpired,
    TokenOld,
    TokenOverflow,
    TokenRefused,
    TokenUsed,
)
from smarthydra.prepay.sts_algorithms import BaseDate, EncryptionAlgorithm
from smarthydra.prepay.sts_meter import (
    CREDIT_REGISTERS,
    MeterState,
    PendingKeyChange,
    redeem,
)
from smarthydra.prepay.sts_tokens import (
    KeyChangeToken1,
    KeyChangeToken2,
    KeyChangeToken3,
    KeyChangeToken4,
    TokenClass,
    parse_fields,
    token_fields,
)

STS_LOAD_FILE_AID = bytes.fromhex("F053485911")
STS_MODULE_AID = bytes.fromhex("F05348591101")
STS_APPLET_AID = bytes.fromhex("F0534859110101")

CLA = 0x80
INS_REDEEM = 0x20
INS_READ = 0x22

#: refusal reason -> status word (the reason code also comes back as response data)
REFUSAL_SW: dict[type[TokenRefused], int] = {
    TokenFormatError: SW.WRONG_DATA,
    TokenCrcError: SW.SECURITY_STATUS_NOT_SATISFIED,
    TokenClassUnsupported: SW.FUNCTION_NOT_SUPPORTED,
    TokenUsed: SW.COMMAND_NOT_ALLOWED,
    TokenOld: SW.CONDITIONS_NOT_SATISFIED,
    TokenKeyExpired: SW.REFERENCED_DATA_NOT_FOUND,
    TokenOverflow: SW.NOT_ENOUGH_MEMORY,
}
SW_REFUSAL: dict[int, type[TokenRefused]] = {int(sw): cls for cls, sw in REFUSAL_SW.items()}


def install_parameters(state: MeterState) -> bytes:
    return (bytes((int(state.algorithm.value),)) + state.base_date.value.to_bytes(2, "big")
            + bytes((state.krn, state.kt, state.ti, state.ken)) + state.decoder_key)


def _optional(value: int | None) -> int:
    return -1 if value is None else value


def _load_pending(stored: bytes) -> PendingKeyChange | None:
    if not stored:
        return None
    pending = PendingKeyChange()
    for i in range(0, len(stored), 7):
        token = parse_fields(TokenClass.MANAGEMENT, stored[i],
                             int.from_bytes(stored[i + 1: i + 7], "big"))
        assert isinstance(token, KeyChangeToken1 | KeyChangeToken2 | KeyChangeToken3
                          | KeyChangeToken4)
        pending = pending.with_section(token)
    return pending


class StsMeterApplet(Applet):
    key = PersistentBytes(max_size=16)
    config = PersistentBytes(max_size=8)  # ea, base year (2), krn, kt, ti, ken
    credit = PersistentBytes(max_size=8 * CREDIT_REGISTERS)
    tids = PersistentBytes(max_size=3 * 64)
    settings = PersistentBytes(max_size=512)  # JSON: management values, SGC, tamper, tests
    pending = PersistentBytes(max_size=7 * 4)  # key change sections: subclass, 44-bit fields

    def install(self, params: bytes) -> None:
        if len(params) not in (15, 23):
            raise ISOException(SW.WRONG_DATA, "install parameters: EA, year, KRN, KT, TI, KEN, key")
        try:
            state = MeterState(
                decoder_key=params[7:], algorithm=EncryptionAlgorithm(f"{params[0]:02d}"),
                base_date=BaseDate(int.from_bytes(params[1:3], "big")),
                krn=params[3], kt=params[4], ti=params[5], ken=params[6],
            )
        except (ValueError, StsKeyError) as exc:
            raise ISOException(SW.WRONG_DATA, str(exc)) from None
        self._store(state, None)

    # --- state <-> NVM ---------------------------------------------------------------------

    def _load(self) -> MeterState:
        config = self.config
        settings = json.loads(self.settings or b"{}")
        pending = self.pending
        return MeterState(
            decoder_key=self.key,
            algorithm=EncryptionAlgorithm(f"{config[0]:02d}"),
            base_date=BaseDate(int.from_bytes(config[1:3], "big")),
            krn=config[3], kt=config[4], ti=config[5], ken=config[6],
            credit=tuple(int.from_bytes(self.credit[8 * i: 8 * i + 8], "big")
                         for i in range(CREDIT_REGISTERS)),
            tids=tuple(int.from_bytes(self.tids[i: i + 3], "big")
                       for i in range(0, len(self.tids), 3)),
            max_power_limit=None if settings.get("mpl", -1) < 0 else settings["mpl"],
            tariff_rate=None if settings.get("rate", -1) < 0 else settings["rate"],
            phase_unbalance_limit=None if settings.get("ppul", -1) < 0 else settings["ppul"],
            water_meter_factor=None if settings.get("wmf", -1) < 0 else settings["wmf"],
            sgc=None if settings.get("sgc", -1) < 0 else settings["sgc"],
            tamper=bool(settings.get("tamper", False)),
            test_requests=tuple(settings.get("tests", [])),
            pending=_load_pending(pending),
        )

    def _store(self, state: MeterState, old: MeterState | None) -> None:
        """Write the fields that changed (all of them on install)."""
        def changed(name: str) -> bool:
            return old is None or getattr(old, name) != getattr(state, name)

        if changed("decoder_key"):
            self.key = state.decoder_key
        if any(changed(n) for n in ("algorithm", "base_date", "krn", "kt", "ti", "ken")):
            self.config = (bytes((int(state.algorithm.value),))
                           + state.base_date.value.to_bytes(2, "big")
                           + bytes((state.krn, state.kt, state.ti, state.ken)))
        if changed("credit"):
            self.credit = b"".join(v.to_bytes(8, "big") for v in state.credit)
        if changed("tids"):
            self.tids = b"".join(t.to_bytes(3, "big") for t in state.tids)
        if any(changed(n) for n in ("max_power_limit", "tariff_rate", "phase_unbalance_limit",
                                    "water_meter_factor", "sgc", "tamper", "test_requests")):
            self.settings = json.dumps({
                "mpl": _optional(state.max_power_limit), "rate": _optional(state.tariff_rate),
                "ppul": _optional(state.phase_unbalance_limit),
                "wmf": _optional(state.water_meter_factor), "sgc": _optional(state.sgc),
                "tamper": state.tamper,
                "tests": list(state.test_requests),
            }, separators=(",", ":")).encode()
        if changed("pending"):
            p = state.pending
            self.pending = b"" if p is None else b"".join(
                bytes((int(t.subclass),)) + token_fields(t).to_bytes(6, "big")
                for t in p.sections)

    # --- commands ---------------------------------------------------------------------------

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        if apdu.cla & 0x80 != 0x80:
            raise ISOException(SW.CLA_NOT_SUPPORTED)
        if apdu.ins == INS_READ:
            state = self._load()
            newest = state.tids[-1] if state.tids else 0
            return (b"".join(v.to_bytes(8, "big") for v in state.credit)
                    + state.base_date.value.to_bytes(2, "big")
                    + bytes((state.krn, state.kt, state.ti, state.ken, len(state.tids)))
                    + newest.to_bytes(3, "big")
                    + (0xFFFFFF if state.sgc is None else state.sgc).to_bytes(3, "big"))
        if apdu.ins != INS_REDEEM:
            raise ISOException(SW.INS_NOT_SUPPORTED)
        try:
            digits = apdu.data.decode("ascii")
        except UnicodeDecodeError:
            raise ISOException(SW.WRONG_DATA, "token digits are ASCII", b"format") from None
        state = self._load()
        try:
            updated, outcome = redeem(state, digits)
        except TokenRefused as exc:
            sw = REFUSAL_SW.get(type(exc), SW.WRONG_DATA)
            raise ISOException(sw, str(exc), exc.reason.encode()) from None
        except PrepayError as exc:
            raise ISOException(SW.WRONG_DATA, str(exc), exc.reason.encode()) from None
        # one transaction: the credit register and the TID memory change together or not at all
        self.card.begin_transaction()
        self._store(updated, state)
        self.card.commit_transaction()
        token = outcome.token
        return (bytes((int(token.token_class), int(token.subclass)))
                + outcome.credited_tenths.to_bytes(8, "big") + bytes((int(outcome.key_changed),)))


STS_LOAD_FILE = LoadFile(STS_LOAD_FILE_AID, {STS_MODULE_AID: StsMeterApplet}, "sts-meter")


def sts_meter_profile(initial: MeterState) -> CardProfile:
    """A card image whose personalisation installs the STS applet for ``initial``."""
    params = install_parameters(replace(initial))

    def personalize(manager: CardManager) -> None:
        if manager.entry(STS_APPLET_AID) is None:
            manager.install(STS_LOAD_FILE_AID, STS_MODULE_AID, STS_APPLET_AID, params=params)

    return CardProfile("sts-meter", load_files=(STS_LOAD_FILE,), personalize=personalize)


class StsMeterClient:
    """Host side of the applet: sends APDUs to a powered card and maps refusals back."""

    def __init__(self, card: Card) -> None:
        self.card = card

    def _send(self, ins: int, data: bytes = b"") -> ResponseAPDU:
        select = CommandAPDU(0x00, 0xA4, 0x04, 0x00, STS_APPLET_AID)
        response = ResponseAPDU.parse(self.card.transmit(select.encode()))
        if response.sw != SW.OK:
            raise PrepayError(f"cannot select the STS applet: {response.sw:04X}")
        return ResponseAPDU.parse(self.card.transmit(CommandAPDU(CLA, ins, 0, 0, data, 256).encode()))

    def redeem(self, digits: str) -> tuple[int, int, int, bool]:
        """(class, subclass, credited tenths, key changed), or the refusal raised."""
        response = self._send(INS_REDEEM, digits.encode("ascii", "replace"))
        if response.sw != SW.OK:
            refusal = SW_REFUSAL.get(response.sw, TokenRefused)
            reason = response.data.decode("ascii", "replace")
            raise refusal(f"the meter refused the token: {reason or hex(response.sw)}")
        data = response.data
        return data[0], data[1], int.from_bytes(data[2:10], "big"), bool(data[10])

    def credit(self) -> list[int]:
        response = self._send(INS_READ)
        if response.sw != SW.OK:
            raise PrepayError(f"READ STATE failed: {response.sw:04X}")
        return [int.from_bytes(response.data[8 * i: 8 * i + 8], "big")
                for i in range(CREDIT_REGISTERS)]

    def base_year(self) -> int:
        data = self._send(INS_READ).data
        return int.from_bytes(data[64:66], "big")

    def key_state(self) -> dict[str, int | None]:
        """Base year, KRN, KT, TI, KEN and SGC as the card reports them."""
        response = self._send(INS_READ)
        if response.sw != SW.OK:
            raise PrepayError(f"READ STATE failed: {response.sw:04X}")
        data = response.data
        sgc = int.from_bytes(data[74:77], "big")
        return {"base_year": int.from_bytes(data[64:66], "big"), "krn": data[66],
                "kt": data[67], "ti": data[68], "ken": data[69],
                "sgc": None if sgc == 0xFFFFFF else sgc}

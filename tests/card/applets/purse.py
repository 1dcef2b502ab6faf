"""A well-behaved post-issuance applet: an electronic purse with a shared read-only view.

Written against the card API only, so it runs restricted. Commands (CLA 80):
  30 CREDIT  data 4-byte amount -> balance
  32 DEBIT   data 4-byte amount -> balance (6985 if the balance is too low)
  34 READ    -> balance || operation count
  36 CHECKSUM data -> 2-byte sum of the data bytes (loops over the data)
  38 SCRATCH P1=0 write data to RAM, P1=1 read it back
"""

from __future__ import annotations

from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, Applet, ClearEvent, ISOException, PersistentInt
from smarthydra.card.firewall import Shareable

LIMIT = 1_000_000


def amount_of(data: bytes) -> int:
    if len(data) != 4:
        raise ISOException(SW.WRONG_LENGTH, "amount is 4 bytes")
    return int.from_bytes(data, "big")


class BalanceView(Shareable):
    interface = frozenset({"balance"})

    def __init__(self, purse: PurseApplet) -> None:
        self.purse = purse

    def balance(self) -> int:
        return self.purse.balance


class PurseApplet(Applet):
    balance = PersistentInt(size=4)
    operations = PersistentInt(size=4)

    def __init__(self) -> None:
        self.scratch = self.card.make_transient(32, ClearEvent.ON_DESELECT)
        self.view = BalanceView(self)

    def install(self, params: bytes) -> None:
        if params:
            self.balance = amount_of(params)

    def state(self) -> bytes:
        return self.balance.to_bytes(4, "big") + self.operations.to_bytes(4, "big")

    def get_shareable(self, client_aid: bytes | None, parameter: int) -> Shareable | None:
        return self.view

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        ins = apdu.ins
        if ins == 0x30 or ins == 0x32:
            amount = amount_of(apdu.data)
            self.card.begin_transaction()
            if ins == 0x30:
                if self.balance + amount > LIMIT:
                    raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "over the limit")
                self.balance += amount
            else:
                if amount > self.balance:
                    raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "balance too low")
                self.balance -= amount
            self.operations += 1
            self.card.commit_transaction()
            return self.state()
        if ins == 0x34:
            return self.state()
        if ins == 0x36:
            total = 0
            for byte in apdu.data:
                total = (total + byte) % 65536
            return total.to_bytes(2, "big")
        if ins == 0x38:
            if apdu.p1 == 0:
                data = apdu.data[:32]
                self.scratch[0:32] = data + bytes(32 - len(data))
                return None
            return bytes(self.scratch)
        raise ISOException(SW.INS_NOT_SUPPORTED)

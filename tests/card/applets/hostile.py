"""A post-issuance applet that passes the static checks and misbehaves at run time.

Every instruction (CLA 80) is one attack; the card must stop each with a specific error,
roll back what it started, and keep serving the other applets.
"""

from __future__ import annotations

from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, Applet, ISOException, PersistentInt

PURSE_AID = bytes.fromhex("F0534859A00101")


def deeper(n: int) -> int:
    return deeper(n + 1) + 1


class HostileApplet(Applet):
    counter = PersistentInt(size=4)

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        ins = apdu.ins
        if ins == 0x40:  # loop forever
            while True:
                pass
        if ins == 0x42:  # swallow the stop and carry on looping
            while True:
                try:
                    while True:
                        pass
                except Exception:
                    pass
        if ins == 0x44:  # unbounded recursion
            return deeper(0).to_bytes(4, "big")
        if ins == 0x46:  # one huge allocation
            return bytes(10**9)
        if ins == 0x48:
            return b"x" * 10**8
        if ins == 0x4A:
            return (1 << 10**9).to_bytes(4, "big")
        if ins == 0x4C:  # doubling by concatenation
            blob = b"x"
            for _ in range(64):
                blob = blob + blob
            return blob
        if ins == 0x4E:  # doubling a list in place
            items = [0]
            for _ in range(64):
                items.extend(items)
            return None
        if ins == 0x50:  # format-string attribute walk
            return "{0.__class__.__mro__}".format(self).encode()  # noqa: UP030, UP032
        if ins == 0x52:  # reach object through a class
            return repr(int.mro()).encode()
        if ins == 0x54:  # reach another applet's persistent field through its shareable
            view = self.card.lookup_shareable(PURSE_AID)
            return view.purse.balance.to_bytes(4, "big")
        if ins == 0x56:  # the permitted way: the shared interface
            view = self.card.lookup_shareable(PURSE_AID)
            return view.balance().to_bytes(4, "big")
        if ins == 0x58:  # poison the card services every applet uses
            self.card.random = None
            return None
        if ins == 0x5A:  # poison the applet base class
            Applet.select = Applet.deselect
            return None
        if ins == 0x5C:  # hog RAM
            arrays = []
            while True:
                arrays.append(self.card.make_transient(1024))
        if ins == 0x5E:  # start a transaction, write, then run away
            self.card.begin_transaction()
            self.counter = self.counter + 1
            while True:
                pass
        if ins == 0x60:
            return self.counter.to_bytes(4, "big")
        if ins == 0x62:
            return self.card.random(10**9)
        if ins == 0x64:
            return bytes([x % 256 for x in range(10**9)])
        if ins == 0x66:  # expensive card services in a loop
            key = self.card.ec_key("k")
            key.generate()
            while True:
                key.sign(b"data")
        if ins == 0x68:
            return sum(range(10**12)).to_bytes(8, "big")
        if ins == 0x6A:
            return b"".join(b"ab" for _ in range(10**9))
        if ins == 0x6C:  # catch the stop and answer as if nothing happened
            try:
                while True:
                    pass
            except Exception:
                return b"survived"
        if ins == 0x6E:  # walk from an exception to its frames
            try:
                raise ValueError("x")
            except ValueError as exc:
                return repr(exc.with_traceback(None)).encode()
        if ins == 0x70:  # write past a fixed buffer by slice assignment
            buffer = bytearray(16)
            buffer[0:0] = bytes(30000)
            buffer[0:0] = bytes(30000)
            return None
        if ins == 0x72:  # a good answer, to show the applet itself still works
            return b"ok"
        raise ISOException(SW.INS_NOT_SUPPORTED)

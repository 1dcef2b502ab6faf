"""atheris harness: the premises' HAN frames and the comms hub's WAN and HAN inputs.

Nothing from outside may change state: after every input the ESME's registers and the hub card's
NVM are as before, a HAN frame that is not authentic is dropped and logged, and the hub answers
no unauthenticated WAN frame.
Run: ``python -m tests.fuzz.fuzz_premises -runs=100000`` (from the repository root).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tests.fuzz.harness import Target, main, splice

INSTRUMENT = ("smarthydra.premises", "smarthydra.gbcs.envelope")


def targets() -> list[Target]:
    from smarthydra.gbcs.builder import build_command
    from smarthydra.premises.han import HanFrame, HanLink, HanSecurityError, protect
    from smarthydra.sim.world import build_world

    world = build_world(homes=1, seed=51)
    home = world.home(0)
    hub, esme = home.hub, home.esme
    key = bytes(range(16))
    sealed = protect(key, esme.eui.value, 7, b"a HAN plaintext")

    def state(card: bool) -> tuple[object, ...]:
        return (esme.snapshot(), dict(hub.card.runtime.nvm.snapshot()) if card else None)

    def unchanged(run: Callable[[], None], card: bool = True) -> None:
        # card=False when the frame is for the meter: the hub forwards it over the HAN (its
        # frame counter for the meter advances, rightly) and the meter does the MAC check.
        before = state(card)
        try:
            run()
        finally:
            if state(card) != before:
                raise AssertionError("an unauthenticated input changed the meter or the hub card")

    def wan(frame: bytes, card: bool = True) -> None:
        def deliver() -> None:
            if hub.receive_from_wan(frame) is not None:
                raise AssertionError(f"the hub answered an unauthenticated WAN frame {frame.hex()}")
        unchanged(deliver, card)

    def forged_wan(data: bytes) -> None:
        # A well-formed envelope (to the hub or the meter, any message code) whose MAC is wrong.
        to_hub = data[:1] < b"\x80"
        recipient = hub.eui.value if to_hub else esme.eui.value
        code = int.from_bytes(data[1:3].ljust(2, b"\x00"), "big")
        wan(build_command(originator=world.supplier.eui.value, recipient=recipient,
                          counter=int.from_bytes(data[3:7].ljust(4, b"\x00"), "big") + 1,
                          message_code=code, payload=data[7:], acb_z=bytes(32)).wire(),
            card=to_hub)

    def han(frame: bytes) -> None:
        def deliver() -> None:
            logged = len(hub.log)
            if hub.receive_from_han(frame) is not None:
                raise AssertionError(f"the hub answered an unauthenticated HAN frame {frame.hex()}")
            if len(hub.log) == logged:
                raise AssertionError("a dropped HAN frame was not logged")
        unchanged(deliver)

    def link_open(frame: bytes) -> None:
        link = HanLink(esme.eui.value, key, incoming=6)
        try:
            link.open(frame, esme.eui.value)
        except HanSecurityError:
            if link.incoming != 6:
                raise AssertionError("a refused frame moved the frame counter") from None
            raise

    return [
        Target("HanFrame.decode", HanFrame.decode, (HanSecurityError,)),
        Target("HanLink.open (spliced)", lambda b: link_open(splice(sealed, b)),
               (HanSecurityError,)),
        Target("hub.receive_from_wan", wan, ()),
        Target("hub.receive_from_wan (forged envelope)", forged_wan, ()),
        Target("hub.receive_from_han", han, ()),
        Target("hub.receive_from_han (device source)", lambda b: han(esme.eui.value + b), ()),
    ]


if __name__ == "__main__":
    main(sys.modules[__name__])

"""The chip: NVM, power, ATR, and a runtime per power-up.

A :class:`Card` is what a reader talks to. ``power_on`` recovers NVM (rolling back a torn
transaction), registers the ROM load files, runs the profile's personalisation step (which
installs what is missing, so it is safe on every power-up) and returns the ATR. ``transmit``
takes command bytes and returns response bytes; bad input always gets a status word. A
:class:`~.memory.PowerCut` from the injector propagates out of ``transmit`` and leaves the
card unpowered, as a real power loss would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from smarthydra.card.firewall import RUNTIME_CONTEXT, entered
from smarthydra.card.memory import Backing, MemoryBacking, Nvm, PowerCut, PowerCutInjector
from smarthydra.card.registry import LoadFile
from smarthydra.card.rng import OsRandom, RandomSource
from smarthydra.card.runtime import CardConfig, CardManager, LoadFileResolver, Runtime


class CardNotPowered(Exception):
    """A command was sent to a card that is not powered (power it on first)."""


@dataclass(frozen=True)
class CardProfile:
    """What a card image contains: ROM load files and how to personalise a fresh card."""

    name: str
    load_files: Sequence[LoadFile] = ()
    personalize: Callable[[CardManager], None] | None = None
    config: CardConfig = field(default_factory=CardConfig)
    resolver: LoadFileResolver | None = None


def build_atr(historical: bytes) -> bytes:
    """``3B 8K 80 01 <historical> TCK``: T=1 only, K historical bytes, with the check byte."""
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    body = bytes((0x80 | len(historical), 0x80, 0x01)) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes((tck,))


class Card:
    def __init__(
        self,
        backing: Backing | None = None,
        profile: CardProfile | None = None,
        *,
        rng: RandomSource | None = None,
        injector: PowerCutInjector | None = None,
    ) -> None:
        self.backing = backing if backing is not None else MemoryBacking()
        self.profile = profile if profile is not None else CardProfile("empty")
        self.rng = rng if rng is not None else OsRandom()
        self.injector = injector
        self.atr = build_atr(self.profile.config.historical_bytes)
        self._runtime: Runtime | None = None

    @property
    def powered(self) -> bool:
        return self._runtime is not None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise CardNotPowered("the card is not powered")
        return self._runtime

    @property
    def manager(self) -> CardManager:
        """Host-side card management (the personaliser's view)."""
        return self.runtime.manager

    def power_on(self) -> bytes:
        """Power up (recovering NVM); returns the ATR. A no-op when already powered."""
        if self._runtime is not None:
            return self.atr
        config = self.profile.config
        try:
            nvm = Nvm(self.backing, injector=self.injector, commit_capacity=config.commit_capacity)
            runtime = Runtime(
                nvm, self.rng, config, {lf.aid: lf for lf in self.profile.load_files},
                self.profile.resolver,
            )
            with entered(RUNTIME_CONTEXT, None):
                for load_file in self.profile.load_files:
                    if nvm.read("r/lf/" + load_file.aid.hex()) is None:
                        runtime.manager.register_load_file(load_file, rom=True)
                if self.profile.personalize is not None:
                    self.profile.personalize(runtime.manager)
            runtime.power_up()
        except PowerCut:
            self._runtime = None
            raise
        self._runtime = runtime
        return self.atr

    def power_off(self) -> None:
        """Power lost: RAM (transients, channels, selection) is gone; NVM stays."""
        self._runtime = None

    def reset(self) -> bytes:
        self.power_off()
        return self.power_on()

    def transmit(self, command: bytes) -> bytes:
        runtime = self.runtime
        try:
            response = runtime.process(bytes(command))
        except PowerCut:
            self._runtime = None
            raise
        if runtime.nvm.lost_power is not None:  # an applet swallowed the cut: still a cut
            self._runtime = None
            raise runtime.nvm.lost_power
        return response

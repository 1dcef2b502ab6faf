"""Receiving GBCS messages as a device or a remote party does: MAC first, then parse, then
signature, then the use case's anti-replay rule. Sans-I/O: counters live in a mapping the
caller owns (a dict, or a persistent store with the same interface).

Device side, for every command::

    guard = ReplayGuard(counters)              # counters: MutableMapping[CounterKey, int]
    command = receive_command(
        wire, mac_z=z_acb_device, signer_public_key=supplier_ds_public, guard=guard,
        catalogue=catalogue,
    )                                          # raises a GbcsError subclass, else accepted

Order, as GBCS requires: the MAC is checked from the fixed header alone
(:func:`~smarthydra.gbcs.envelope.parse_mac_header`) before the message is parsed; only then
is it decoded, its signature checked when the use case is critical, and its counter checked
against and recorded in the guard (:class:`~smarthydra.gbcs.catalogue.ReplayRule`: per
originator strictly increasing, and per supplementary remote party when one is carried).
A remote party receiving a response checks that it answers an outstanding command
(:meth:`ReplayGuard.accept_response`); alerts are strictly increasing per device.
"""

from __future__ import annotations

import enum
from collections.abc import MutableMapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.gbcs import security
from smarthydra.gbcs.catalogue import Catalogue, Category
from smarthydra.gbcs.envelope import CraFlag, parse_mac_header
from smarthydra.gbcs.errors import BadField, GbcsSecurityError, MacInvalid, SignatureMissing
from smarthydra.gbcs.usecase import UseCaseMessage, decode_use_case_message


class ReplayRejected(GbcsSecurityError):
    """The counter is not greater than the last one accepted (or answers no command)."""


class SignatureInvalid(GbcsSecurityError):
    """The signature of a critical message does not verify with the originator's key."""


class CounterKind(enum.Enum):
    COMMAND = "command"  # originator counter of commands, per originator
    SUPPLEMENTARY = "supplementary remote party"  # per supplementary remote party
    ALERT = "alert"  # a device's alert counter, per device


@dataclass(frozen=True)
class CounterKey:
    party: bytes  # the EUI-64 the counter belongs to
    kind: CounterKind


@dataclass
class ReplayGuard:
    """The highest counters accepted, and (remote party side) the commands awaiting answers."""

    counters: MutableMapping[CounterKey, int] = field(default_factory=dict)
    outstanding: set[tuple[bytes, int]] = field(default_factory=set)  # (device, counter)

    def _greater(self, key: CounterKey, value: int, what: str) -> None:
        last = self.counters.get(key)
        if last is not None and value <= last:
            raise ReplayRejected(
                f"{what} {value} from {key.party.hex().upper()} is not greater than the last "
                f"accepted ({last})"
            )

    def check_command(self, command: UseCaseMessage) -> None:
        """Raise :class:`ReplayRejected` if ``command`` replays an accepted counter."""
        self._greater(
            CounterKey(command.originator, CounterKind.COMMAND), command.counter, "counter"
        )
        party = command.params.supplementary_remote_party_id
        counter = command.params.supplementary_remote_party_counter
        if party is not None and counter is not None:
            self._greater(
                CounterKey(party, CounterKind.SUPPLEMENTARY),
                counter,
                "supplementary remote party counter",
            )

    def accept_command(self, command: UseCaseMessage) -> None:
        """Check, then record the command's counters (call once it has authenticated)."""
        self.check_command(command)
        self.counters[CounterKey(command.originator, CounterKind.COMMAND)] = command.counter
        party = command.params.supplementary_remote_party_id
        counter = command.params.supplementary_remote_party_counter
        if party is not None and counter is not None:
            self.counters[CounterKey(party, CounterKind.SUPPLEMENTARY)] = counter

    def expect_response(self, device: bytes, counter: int) -> None:
        """Remote party side: a command with ``counter`` went to ``device``."""
        self.outstanding.add((bytes(device), counter))

    def accept_response(self, response: UseCaseMessage) -> None:
        """A response must carry the counter of an outstanding command to that device; it
        is accepted once (a second copy is a replay)."""
        key = (response.originator, response.counter)
        if key not in self.outstanding:
            raise ReplayRejected(
                f"response {response.counter} from {response.originator.hex().upper()} "
                "answers no outstanding command"
            )
        self.outstanding.discard(key)

    def accept_alert(self, alert: UseCaseMessage) -> None:
        """A device's alerts carry strictly increasing counters."""
        key = CounterKey(alert.originator, CounterKind.ALERT)
        self._greater(key, alert.counter, "alert counter")
        self.counters[key] = alert.counter


def receive_command(
    wire: bytes,
    *,
    mac_z: bytes | None,
    guard: ReplayGuard,
    signer_public_key: ec.EllipticCurvePublicKey | None = None,
    catalogue: Catalogue | None = None,
    encryption_z: bytes | None = None,
) -> UseCaseMessage:
    """A device accepting a command: MAC (before parsing), decode, signature when critical,
    replay. ``mac_z`` is Z between the ACB's and this device's KA keys (``None`` only for the
    commands that are signed and not MAC'd). Raises :class:`MacInvalid`,
    :class:`SignatureMissing`, :class:`SignatureInvalid`, :class:`ReplayRejected` or a
    decode error (``BadField`` for a response or alert); nothing is recorded unless every check passes."""
    if mac_z is not None:
        header = parse_mac_header(wire)
        if header.cra_flag is not CraFlag.COMMAND:
            raise BadField(f"a device accepts commands, not a {header.cra_flag.name.lower()}")
        key = security.mac_key(
            mac_z, header.originator, header.cra_flag, header.originator_counter, header.recipient
        )
        if not security.verify_mac(key, header):
            raise MacInvalid("the MAC does not verify: message dropped before parsing")
    command = decode_use_case_message(wire, catalogue=catalogue, encryption_z=encryption_z)
    if command.cra_flag is not CraFlag.COMMAND:
        raise BadField(f"a device accepts commands, not a {command.cra_flag.name.lower()}")
    if mac_z is None and command.mac is not None:
        raise MacInvalid("the command is MAC'd but no MAC key was given")
    critical = command.use_case is not None and command.use_case.category in (
        Category.CRITICAL_COMMAND,
    )
    if critical or command.is_signed:
        if not command.is_signed:
            raise SignatureMissing(f"{command.use_case_code} is critical: the command is unsigned")
        if signer_public_key is None:
            raise SignatureMissing("a signed command needs the originator's public key to verify")
        if not security.verify_signature(command.message, signer_public_key):
            raise SignatureInvalid("the command's signature does not verify")
    guard.accept_command(command)
    return command

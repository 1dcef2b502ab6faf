"""The card runtime: selection, logical channels, chaining, GET RESPONSE and dispatch.

One :class:`Runtime` lives for one power-up of the card: it owns the RAM state (channels,
transient arrays, applet objects) and reaches NVM through :class:`~.memory.Nvm`. It turns any
command into a response: malformed input gets a status word, applet failures get a status
word, and an open transaction is aborted at the end of every command.

Seams for a GlobalPlatform layer: registry entries carry life cycles and privileges; a
security domain gets the :class:`CardManager` (install, delete, life cycles, personalisation
forwarding, load-file storage); a :class:`SecureChannelLayer` set on a channel unwraps each
command before dispatch and wraps its response; load files can be registered at run time and
a resolver rebuilds post-issuance load files from NVM at power-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.card.apdu import (
    SW,
    APDUFormatError,
    ClassByte,
    CommandAPDU,
    ResponseAPDU,
)
from smarthydra.card.applet import APDU, Applet, ClearEvent, ISOException, TransientArray
from smarthydra.card.firewall import (
    RUNTIME_CONTEXT,
    CardObject,
    Context,
    SecurityException,
    Shareable,
    active_frame,
    entered,
    previous_context_aid,
)
from smarthydra.card.keys import AesKeyHandle, EcKeyHandle, KeyError_
from smarthydra.card.memory import CommitCapacityExceeded, Nvm, TransactionError
from smarthydra.card.registry import (
    APP_PREFIX,
    CARD_LIFE_CYCLE_CELL,
    LOAD_FILE_DATA_PREFIX,
    LOAD_FILE_PREFIX,
    LifeCycle,
    LoadFile,
    LoadFileEntry,
    Privilege,
    RegistryEntry,
    RegistryError,
    check_aid,
)
from smarthydra.card.rng import RandomSource
from smarthydra.crypto import primitives

INS_SELECT = 0xA4
INS_MANAGE_CHANNEL = 0x70
INS_GET_RESPONSE = 0xC0

#: given a load-file AID and a reader of NVM cells, rebuild a post-issuance load file
LoadFileResolver = Callable[[bytes, Callable[[str], bytes | None]], LoadFile | None]


@dataclass(frozen=True)
class CardConfig:
    channels: int = 4  # logical channels offered, 1..20
    commit_capacity: int = 4096
    max_command_data: int = 65535  # after command chaining
    historical_bytes: bytes = b"smarthydra"

    def __post_init__(self) -> None:
        if not 1 <= self.channels <= 20:
            raise ValueError("a card offers 1..20 logical channels")
        if len(self.historical_bytes) > 15:
            raise ValueError("at most 15 historical bytes fit in an ATR")


class SecureChannelLayer(Protocol):
    """Set by a security domain on a channel; runs in that domain's context."""

    def unwrap(self, command: CommandAPDU) -> CommandAPDU:
        """Verify and decrypt a command, or raise ISOException (the layer is then dropped)."""
        ...

    def wrap(self, command: CommandAPDU, response: ResponseAPDU) -> ResponseAPDU:
        """Protect the response to ``command``."""
        ...


@dataclass
class _Chain:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytearray


@dataclass
class _Channel:
    selected: bytes | None = None
    chain: _Chain | None = None
    pending: bytes = b""
    pending_sw: int = SW.OK
    secure: tuple[SecureChannelLayer, bytes] | None = None  # (layer, owning SD AID)


class Runtime:
    def __init__(
        self,
        nvm: Nvm,
        rng: RandomSource,
        config: CardConfig,
        load_files: dict[bytes, LoadFile],
        resolver: LoadFileResolver | None = None,
    ) -> None:
        self.nvm = nvm
        self.rng = rng
        self.config = config
        self._load_files = load_files
        self._resolver = resolver
        self._contexts: dict[bytes, Context] = {}
        self._applets: dict[bytes, Applet] = {}
        self._channels: list[_Channel | None] = [None] * config.channels
        self._channels[0] = _Channel()
        self._current_channel = 0
        self._transients: list[TransientArray] = []
        self._constructing: set[int] = set()
        self._key_cache: dict[bytes, ec.EllipticCurvePrivateKey] = {}
        self.last_error: str = ""  # why the last command failed with 6F00 (diagnostics)
        with entered(RUNTIME_CONTEXT, None):
            self.services = CardServices(self)
            self.manager = CardManager(self)

    # --- power-up -------------------------------------------------------------------

    def power_up(self) -> None:
        """Rebuild post-issuance load files, then select the default applet on channel 0."""
        for lf in self.load_file_entries():
            if lf.aid not in self._load_files and self._resolver is not None:
                rebuilt = self._resolver(lf.aid, self.nvm.read)
                if rebuilt is not None:
                    self._load_files[lf.aid] = rebuilt
        default = self.default_applet()
        if default is not None and self.applet(default.aid) is not None:
            self._select_on(0, default, command=None)

    def default_applet(self) -> RegistryEntry | None:
        for entry in self.entries():
            if entry.has(Privilege.CARD_RESET) and entry.selectable:
                return entry
        return None

    # --- registry -------------------------------------------------------------------

    def entries(self) -> Iterator[RegistryEntry]:
        for cell, raw in self.nvm.cells(APP_PREFIX):
            yield RegistryEntry.decode(bytes.fromhex(cell[len(APP_PREFIX):]), raw)

    def entry(self, aid: bytes) -> RegistryEntry | None:
        raw = self.nvm.read(APP_PREFIX + aid.hex())
        return None if raw is None else RegistryEntry.decode(aid, raw)

    def load_file_entries(self) -> Iterator[LoadFileEntry]:
        for cell, raw in self.nvm.cells(LOAD_FILE_PREFIX):
            yield LoadFileEntry.decode(bytes.fromhex(cell[len(LOAD_FILE_PREFIX):]), raw)

    def context_for(self, load_file_aid: bytes) -> Context:
        context = self._contexts.get(load_file_aid)
        if context is None:
            load_file = self._load_files.get(load_file_aid)
            name = load_file.name if load_file and load_file.name else load_file_aid.hex().upper()
            context = Context(name, load_file_aid)
            self._contexts[load_file_aid] = context
        return context

    def applet(self, aid: bytes) -> Applet | None:
        """The live applet object for ``aid``, created (``__init__``) on first use."""
        entry = self.entry(aid)
        if entry is None:
            self._applets.pop(aid, None)
            return None
        applet = self._applets.get(aid)
        if applet is not None:
            return applet
        load_file = self._load_files.get(entry.load_file_aid)
        if load_file is None or entry.module_aid not in load_file.modules:
            return None  # code not present on this card: the instance cannot run
        try:
            applet = self._construct(load_file.modules[entry.module_aid], entry)
        except Exception as exc:  # e.g. a restricted __init__ stopped: this instance only
            self.last_error = f"constructing {aid.hex().upper()} raised {exc!r}"
            return None
        self._applets[aid] = applet
        return applet

    def _construct(self, cls: type[Applet], entry: RegistryEntry) -> Applet:
        context = self.context_for(entry.load_file_aid)
        with entered(context, entry.aid):
            self._constructing.add(id(context))
            try:
                applet: Applet = cls.__new__(cls)
                object.__setattr__(applet, "_sh_card", self.services)
                object.__setattr__(applet, "_sh_aid", entry.aid)
                cls.__init__(applet)  # after binding, so __init__ can use self.card
            finally:
                self._constructing.discard(id(context))
        return applet

    def context_of_applet(self, aid: bytes) -> Context | None:
        entry = self.entry(aid)
        return None if entry is None else self.context_for(entry.load_file_aid)

    # --- transients and keys --------------------------------------------------------

    def register_transient(self, array: TransientArray) -> None:
        self._transients.append(array)

    def check_deselect_transient(self, owner: Context | None) -> None:
        """Clear-on-deselect memory is usable only by the context selected on this channel."""
        if owner is None or owner.privileged or id(owner) in self._constructing:
            return
        channel = self._channels[self._current_channel]
        selected = channel.selected if channel is not None else None
        if selected is None or self.context_of_applet(selected) is not owner:
            raise SecurityException(
                f"firewall: clear-on-deselect memory of {owner.name} used while it is not "
                f"the selected context"
            )

    def _clear_transients(self, context: Context | None, event: ClearEvent | None) -> None:
        for array in self._transients:
            owner = object.__getattribute__(array, "_sh_owner")
            clear_on = object.__getattribute__(array, "clear_on")
            if (context is None or owner is context) and (event is None or clear_on is event):
                array._clear()

    def private_key_for(self, scalar: bytes) -> ec.EllipticCurvePrivateKey:
        key = self._key_cache.get(scalar)
        if key is None:
            key = primitives.private_key_from_scalar(scalar)
            if len(self._key_cache) > 64:
                self._key_cache.clear()
            self._key_cache[scalar] = key
        return key

    # --- command processing ---------------------------------------------------------

    def process(self, raw: bytes) -> bytes:
        """One command APDU in, one response APDU out. Never raises for bad input."""
        try:
            command = CommandAPDU.parse(raw)
        except APDUFormatError as exc:
            self._drop_chain_for(raw)
            return ResponseAPDU.status(exc.sw).encode()
        try:
            class_byte = ClassByte.decode(command.cla)
        except APDUFormatError as exc:
            return ResponseAPDU.status(exc.sw).encode()
        number = class_byte.channel
        channel = self._channels[number] if number < len(self._channels) else None
        if channel is None:
            return ResponseAPDU.status(SW.LOGICAL_CHANNEL_NOT_SUPPORTED).encode()
        self._current_channel = number
        try:
            return self._process_on(channel, number, command, class_byte).encode()
        finally:
            # automatic abort at the end of every command (unless the power is gone)
            if self.nvm.in_transaction and self.nvm.lost_power is None:
                self.nvm.abort()

    def _drop_chain_for(self, raw: bytes) -> None:
        if raw:
            try:
                number = ClassByte.decode(raw[0]).channel
            except APDUFormatError:
                return
            if number < len(self._channels) and (channel := self._channels[number]):
                channel.chain = None

    def _process_on(
        self, channel: _Channel, number: int, command: CommandAPDU, class_byte: ClassByte
    ) -> ResponseAPDU:
        interindustry = not class_byte.proprietary
        if interindustry and command.ins == INS_GET_RESPONSE and channel.chain is None:
            return self._get_response(channel, command)
        channel.pending = b""

        # command chaining: collect the segments, answer 9000 to all but the last
        plain_cla = command.cla & ~0x10 & 0xFF
        if class_byte.chained:
            chain = channel.chain
            if chain is None:
                chain = channel.chain = _Chain(
                    plain_cla, command.ins, command.p1, command.p2, bytearray()
                )
            elif (chain.cla, chain.ins, chain.p1, chain.p2) != (
                plain_cla, command.ins, command.p1, command.p2
            ):
                channel.chain = None
                return ResponseAPDU.status(SW.LAST_COMMAND_OF_CHAIN_EXPECTED)
            chain.data += command.data
            if len(chain.data) > self.config.max_command_data:
                channel.chain = None
                return ResponseAPDU.status(SW.WRONG_LENGTH)
            return ResponseAPDU.status(SW.OK)
        if channel.chain is not None:
            chain, channel.chain = channel.chain, None
            if (chain.cla, chain.ins, chain.p1, chain.p2) != (
                command.cla, command.ins, command.p1, command.p2
            ):
                return ResponseAPDU.status(SW.LAST_COMMAND_OF_CHAIN_EXPECTED)
            data = bytes(chain.data) + command.data
            if len(data) > self.config.max_command_data:
                return ResponseAPDU.status(SW.WRONG_LENGTH)
            command = dataclasses.replace(command, data=data, extended=len(data) > 255)

        if interindustry and command.ins == INS_MANAGE_CHANNEL:
            return self._manage_channel(number, command)
        if interindustry and command.ins == INS_SELECT and command.p1 == 0x04:
            return self._select_by_name(channel, number, command)
        return self._dispatch(channel, number, command)

    def _respond(self, channel: _Channel, command: CommandAPDU, data: bytes, sw: int
                 ) -> ResponseAPDU:
        """Send what fits in Ne; keep the rest for GET RESPONSE (61xx)."""
        if not data or (command.ne and len(data) <= command.ne):
            return ResponseAPDU(data, sw)
        first = data[: command.ne]
        channel.pending = data[command.ne :]
        channel.pending_sw = sw
        return ResponseAPDU(first, 0x6100 | min(len(channel.pending), 256) % 256)

    def _get_response(self, channel: _Channel, command: CommandAPDU) -> ResponseAPDU:
        if not channel.pending:
            return ResponseAPDU.status(SW.CONDITIONS_NOT_SATISFIED)
        if command.p1 or command.p2:
            channel.pending = b""
            return ResponseAPDU.status(SW.INCORRECT_P1P2)
        ne = command.ne or 256
        chunk, channel.pending = channel.pending[:ne], channel.pending[ne:]
        if channel.pending:
            return ResponseAPDU(chunk, 0x6100 | min(len(channel.pending), 256) % 256)
        return ResponseAPDU(chunk, channel.pending_sw)

    # --- MANAGE CHANNEL ---------------------------------------------------------------

    def _manage_channel(self, origin: int, command: CommandAPDU) -> ResponseAPDU:
        if command.p1 == 0x00:  # open
            if command.data:
                return ResponseAPDU.status(SW.WRONG_LENGTH)
            if command.p2 == 0:
                free = [n for n in range(1, len(self._channels)) if self._channels[n] is None]
                if not free:
                    return ResponseAPDU.status(SW.FUNCTION_NOT_SUPPORTED)
                if command.ne == 0:
                    return ResponseAPDU.status(SW.WRONG_LENGTH)
                new = free[0]
            else:
                new = command.p2
                if new >= len(self._channels):
                    return ResponseAPDU.status(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
                if self._channels[new] is not None:
                    return ResponseAPDU.status(SW.CONDITIONS_NOT_SATISFIED)
            self._channels[new] = _Channel()
            # the new channel starts with the default applet (from the basic channel) or the
            # origin's applet, when that applet may be selected on several channels
            origin_channel = self._channels[origin]
            candidate = (
                self.default_applet() if origin == 0
                else (self.entry(origin_channel.selected)
                      if origin_channel and origin_channel.selected else None)
            )
            if candidate is not None and self._may_select(new, candidate):
                self._current_channel = new
                try:
                    self._select_on(new, candidate, command=None)
                finally:
                    self._current_channel = origin
            return ResponseAPDU(bytes((new,)) if command.p2 == 0 else b"", SW.OK)
        if command.p1 == 0x80:  # close
            target = command.p2 or origin
            if target == 0:
                return ResponseAPDU.status(SW.FUNCTION_NOT_SUPPORTED)  # never the basic channel
            if target >= len(self._channels) or self._channels[target] is None:
                return ResponseAPDU.status(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
            self._deselect_on(target)
            self._channels[target] = None
            return ResponseAPDU.status(SW.OK)
        return ResponseAPDU.status(SW.INCORRECT_P1P2)

    # --- SELECT -----------------------------------------------------------------------

    def _select_by_name(self, channel: _Channel, number: int, command: CommandAPDU
                        ) -> ResponseAPDU:
        if command.p2 & 0xF0 or command.p2 & 0x03 not in (0x00, 0x02):
            return ResponseAPDU.status(SW.INCORRECT_P1P2)
        name = command.data
        if not name:
            target = self.default_applet()
        else:
            if len(name) > 16:
                return ResponseAPDU.status(SW.WRONG_LENGTH)
            matches = sorted(
                (e for e in self.entries() if e.aid.startswith(name) and e.selectable),
                key=lambda e: (e.aid != name, e.aid),
            )
            if command.p2 & 0x03 == 0x02 and channel.selected in {e.aid for e in matches}:
                after = [e.aid for e in matches].index(channel.selected) + 1
                matches = matches[after:]
            target = matches[0] if matches else None
        if target is None or self.applet(target.aid) is None:
            return ResponseAPDU.status(SW.FILE_NOT_FOUND)
        if self._card_locked() and not (target.is_security_domain
                                        and target.associated_sd is None):
            return ResponseAPDU.status(SW.FILE_NOT_FOUND)  # GP: only the ISD when locked
        if not self._may_select(number, target):
            return ResponseAPDU.status(SW.CONDITIONS_NOT_SATISFIED)
        return self._select_on(number, target, command)

    def _card_locked(self) -> bool:
        raw = self.nvm.read(CARD_LIFE_CYCLE_CELL)
        return raw is not None and raw[0] in (LifeCycle.CARD_LOCKED, LifeCycle.TERMINATED)

    def _may_select(self, number: int, target: RegistryEntry) -> bool:
        """A non-multiselectable applet may be selected on one channel only."""
        applet = self.applet(target.aid)
        if applet is None:
            return False
        if type(applet).multiselectable:
            return True
        return not any(
            ch is not None and ch.selected == target.aid
            for n, ch in enumerate(self._channels) if n != number
        )

    def _select_on(self, number: int, target: RegistryEntry, command: CommandAPDU | None
                   ) -> ResponseAPDU:
        channel = self._channels[number]
        assert channel is not None
        self._deselect_on(number)
        applet = self.applet(target.aid)
        assert applet is not None
        context = self.context_for(target.load_file_aid)
        channel.selected = target.aid
        try:
            with entered(context, target.aid):
                accepted = applet.select()
        except Exception as exc:
            self.last_error = f"select() of {target.aid.hex().upper()} raised {exc!r}"
            accepted = False
        if not accepted:
            channel.selected = None
            return ResponseAPDU.status(SW.APPLET_SELECT_FAILED)
        if command is None:
            return ResponseAPDU.status(SW.OK)
        apdu = self._apdu(command, number, selecting=True)
        return self._run_process(channel, applet, context, target.aid, apdu, command)

    def _deselect_on(self, number: int) -> None:
        channel = self._channels[number]
        if channel is None or channel.selected is None:
            return
        aid, channel.selected = channel.selected, None
        channel.secure = None
        channel.pending = b""
        applet = self._applets.get(aid)
        context = self.context_of_applet(aid)
        if applet is not None and context is not None:
            try:
                with entered(context, aid):
                    applet.deselect()
            except Exception as exc:  # a failing deselect must not stop the selection
                self.last_error = f"deselect() of {aid.hex().upper()} raised {exc!r}"
            still_active = any(
                ch is not None and ch.selected is not None
                and self.context_of_applet(ch.selected) is context
                for ch in self._channels
            )
            if not still_active:
                self._clear_transients(context, ClearEvent.ON_DESELECT)

    # --- dispatch ---------------------------------------------------------------------

    def _apdu(self, command: CommandAPDU, number: int, selecting: bool) -> APDU:
        with entered(RUNTIME_CONTEXT, None):
            return APDU(command, number, selecting)

    def _dispatch(self, channel: _Channel, number: int, command: CommandAPDU) -> ResponseAPDU:
        if channel.selected is None:
            return ResponseAPDU.status(SW.COMMAND_NOT_ALLOWED)
        aid = channel.selected
        applet = self.applet(aid)
        context = self.context_of_applet(aid)
        if applet is None or context is None:  # deleted while selected
            channel.selected = None
            return ResponseAPDU.status(SW.COMMAND_NOT_ALLOWED)
        original = command
        secure = channel.secure
        if secure is not None:
            layer, sd_aid = secure
            sd_context = self.context_of_applet(sd_aid) or RUNTIME_CONTEXT
            try:
                with entered(sd_context, sd_aid):
                    command = layer.unwrap(command)
            except ISOException as exc:
                channel.secure = None  # a security failure ends the session
                return ResponseAPDU.status(exc.sw)
            except Exception as exc:
                channel.secure = None
                self.last_error = f"secure channel unwrap raised {exc!r}"
                return ResponseAPDU.status(SW.SECURITY_STATUS_NOT_SATISFIED)
        apdu = self._apdu(command, number, selecting=False)
        return self._run_process(channel, applet, context, aid, apdu, original, secure)

    def _run_process(
        self,
        channel: _Channel,
        applet: Applet,
        context: Context,
        aid: bytes,
        apdu: APDU,
        original: CommandAPDU,
        secure: tuple[SecureChannelLayer, bytes] | None = None,
    ) -> ResponseAPDU:
        """Run ``process`` in the applet's context; wrap with the layer that unwrapped."""
        data = b""
        try:
            with entered(context, aid):
                result = applet.process(apdu)
            data = bytes(result) if result is not None else b""
            sw = apdu.status
        except ISOException as exc:
            sw, data = exc.sw, exc.data
        except CommitCapacityExceeded as exc:
            sw, self.last_error = SW.NOT_ENOUGH_MEMORY, str(exc)
        except (SecurityException, TransactionError, KeyError_) as exc:
            sw, self.last_error = SW.UNKNOWN, f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # an applet bug must not take the card down
            sw, self.last_error = SW.UNKNOWN, f"applet raised {type(exc).__name__}: {exc}"
        if not 0x6000 <= sw <= 0x9FFF:
            sw, self.last_error = SW.UNKNOWN, f"applet answered the invalid status {sw:#x}"
        if self.nvm.in_transaction:
            self.nvm.abort()
        response = ResponseAPDU(data, sw)
        if secure is not None:
            layer, sd_aid = secure
            sd_context = self.context_of_applet(sd_aid) or RUNTIME_CONTEXT
            try:
                with entered(sd_context, sd_aid):
                    response = layer.wrap(original, response)
            except Exception as exc:
                channel.secure = None
                self.last_error = f"secure channel wrap raised {exc!r}"
                response = ResponseAPDU.status(SW.SECURITY_STATUS_NOT_SATISFIED)
        return self._respond(channel, original, response.data, response.sw)

    # --- services used by CardServices and CardManager --------------------------------

    def current_entry(self) -> RegistryEntry | None:
        frame = active_frame()
        if frame is None or frame.applet_aid is None:
            return None
        return self.entry(frame.applet_aid)

    def set_secure_channel(self, layer: SecureChannelLayer | None, sd_aid: bytes) -> None:
        channel = self._channels[self._current_channel]
        if channel is None:
            raise ISOException(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        channel.secure = None if layer is None else (layer, sd_aid)

    def selected_on(self, number: int) -> bytes | None:
        channel = self._channels[number] if 0 <= number < len(self._channels) else None
        return channel.selected if channel is not None else None

    @property
    def current_channel(self) -> int:
        return self._current_channel

    def reset_ram(self) -> None:
        """RAM lost: every transient cleared, every channel but the basic one closed."""
        self._clear_transients(None, None)
        self._channels = [None] * self.config.channels
        self._channels[0] = _Channel()


class CardServices(CardObject):
    """What an applet may ask of the runtime (``self.card``): an entry-point object."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    # transactions
    def begin_transaction(self) -> None:
        self._runtime.nvm.begin()

    def commit_transaction(self) -> None:
        self._runtime.nvm.commit()

    def abort_transaction(self) -> None:
        self._runtime.nvm.abort()

    @property
    def in_transaction(self) -> bool:
        return self._runtime.nvm.in_transaction

    @property
    def available_commit_capacity(self) -> int:
        nvm = self._runtime.nvm
        return nvm.commit_capacity - nvm.journal_bytes

    # randomness, identity, sharing
    def random(self, n: int) -> bytes:
        return self._runtime.rng.random_bytes(n)

    def previous_context_aid(self) -> bytes | None:
        """AID of the applet that called into this context (None: the runtime did)."""
        return previous_context_aid()

    def selected_aid(self) -> bytes | None:
        """The applet selected on the channel being served."""
        return self._runtime.selected_on(self._runtime.current_channel)

    @property
    def channel(self) -> int:
        return self._runtime.current_channel

    def lookup_shareable(self, server_aid: bytes, parameter: int = 0) -> Shareable | None:
        """Ask applet ``server_aid`` for a shareable-interface object (None if refused)."""
        frame = active_frame()
        client = frame.applet_aid if frame is not None else None
        server = self._runtime.applet(server_aid)
        context = self._runtime.context_of_applet(server_aid)
        entry = self._runtime.entry(server_aid)
        if server is None or context is None or entry is None or not entry.selectable:
            return None
        with entered(context, server_aid):
            shared = server.get_shareable(client, parameter)
        if shared is not None and not issubclass(type(shared), Shareable):
            raise SecurityException("get_shareable must return a Shareable or None")
        return shared

    # memory and keys
    def make_transient(self, size: int, clear_on: ClearEvent = ClearEvent.ON_DESELECT
                       ) -> TransientArray:
        if not 0 <= size <= 65535:
            raise ValueError("a transient array is 0..65535 bytes")
        array = TransientArray(self, size, clear_on)
        self._runtime.register_transient(array)
        return array

    def _key_cell(self, slot: str) -> str:
        frame = active_frame()
        if frame is None or frame.applet_aid is None:
            raise SecurityException("keys belong to applets; no applet is running")
        if not slot or "/" in slot:
            raise ValueError("a key slot name is non-empty and has no '/'")
        return f"k/{frame.applet_aid.hex()}/{slot}"

    def ec_key(self, slot: str) -> EcKeyHandle:
        return EcKeyHandle(self, self._key_cell(slot))

    def aes_key(self, slot: str) -> AesKeyHandle:
        return AesKeyHandle(self, self._key_cell(slot))

    # security domains
    def manager(self) -> CardManager:
        """Card management, for security domains only."""
        entry = self._runtime.current_entry()
        if entry is None or not entry.is_security_domain:
            raise SecurityException("card management is for security domains")
        return self._runtime.manager

    def set_secure_channel(self, layer: SecureChannelLayer | None) -> None:
        """Wrap/unwrap every later command on this channel (security domains only)."""
        entry = self._runtime.current_entry()
        if entry is None or not entry.is_security_domain:
            raise SecurityException("only a security domain opens a secure channel")
        self._runtime.set_secure_channel(layer, entry.aid)


class CardManager(CardObject):
    """Registry management: what a security domain (or the personaliser) may do."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    # reading
    def entries(self) -> list[RegistryEntry]:
        return list(self._runtime.entries())

    def entry(self, aid: bytes) -> RegistryEntry | None:
        return self._runtime.entry(aid)

    def load_files(self) -> list[LoadFileEntry]:
        return list(self._runtime.load_file_entries())

    def load_file_code(self, aid: bytes) -> LoadFile | None:
        return self._runtime._load_files.get(aid)

    @property
    def card_life_cycle(self) -> int:
        raw = self._runtime.nvm.read(CARD_LIFE_CYCLE_CELL)
        return raw[0] if raw else LifeCycle.OP_READY

    def set_card_life_cycle(self, state: int) -> None:
        if not 0 <= state <= 0xFF:
            raise RegistryError("a life-cycle state is one byte")
        self._runtime.nvm.write(CARD_LIFE_CYCLE_CELL, bytes((state,)))

    # load files
    def register_load_file(
        self, load_file: LoadFile, *, rom: bool = True, associated_sd: bytes | None = None
    ) -> LoadFileEntry:
        """Make ``load_file``'s classes available and record it in the registry."""
        self._runtime._load_files[load_file.aid] = load_file
        cell = LOAD_FILE_PREFIX + load_file.aid.hex()
        raw = self._runtime.nvm.read(cell)
        if raw is not None:
            return LoadFileEntry.decode(load_file.aid, raw)
        entry = LoadFileEntry(load_file.aid, LifeCycle.LOADED, associated_sd, rom)
        self._runtime.nvm.write(cell, entry.encode())
        return entry

    def write_load_file_data(self, aid: bytes, name: str, data: bytes | None) -> None:
        """NVM storage for a post-issuance load file (code, manifest), read by the resolver."""
        if self._runtime.nvm.read(LOAD_FILE_PREFIX + aid.hex()) is None:
            raise RegistryError(f"no load file {aid.hex().upper()}")
        self._runtime.nvm.write(f"{LOAD_FILE_DATA_PREFIX}{aid.hex()}/{name}", data)

    def set_load_file_associated_sd(self, aid: bytes, sd_aid: bytes | None) -> LoadFileEntry:
        """Extradition of a load file to another security domain."""
        raw = self._runtime.nvm.read(LOAD_FILE_PREFIX + aid.hex())
        if raw is None:
            raise RegistryError(f"no load file {aid.hex().upper()}")
        updated = dataclasses.replace(LoadFileEntry.decode(aid, raw), associated_sd=sd_aid)
        self._runtime.nvm.write(updated.cell, updated.encode())
        return updated

    def delete_load_file(self, aid: bytes) -> None:
        if any(e.load_file_aid == aid for e in self._runtime.entries()):
            raise RegistryError(f"load file {aid.hex().upper()} still has applet instances")
        if self._runtime.nvm.read(LOAD_FILE_PREFIX + aid.hex()) is None:
            raise RegistryError(f"no load file {aid.hex().upper()}")
        def do() -> None:
            self._runtime.nvm.erase_prefix(f"{LOAD_FILE_DATA_PREFIX}{aid.hex()}/")
            self._runtime.nvm.write(LOAD_FILE_PREFIX + aid.hex(), None)

        self._atomically(do)
        self._runtime._load_files.pop(aid, None)

    # applets
    def install(
        self,
        load_file_aid: bytes,
        module_aid: bytes,
        instance_aid: bytes,
        *,
        privileges: bytes = b"\x00\x00\x00",
        params: bytes = b"",
        life_cycle: int = LifeCycle.SELECTABLE,
        associated_sd: bytes | None = None,
    ) -> RegistryEntry:
        """Create an applet instance and call its ``install`` (atomically)."""
        check_aid(instance_aid, "instance AID")
        load_file = self._runtime._load_files.get(load_file_aid)
        if load_file is None:
            raise RegistryError(f"no load file {load_file_aid.hex().upper()} on this card")
        if module_aid not in load_file.modules:
            raise RegistryError(f"load file has no module {module_aid.hex().upper()}")
        if self._runtime.entry(instance_aid) is not None or (
            self._runtime.nvm.read(LOAD_FILE_PREFIX + instance_aid.hex()) is not None
        ):
            raise RegistryError(f"AID {instance_aid.hex().upper()} is already in use")
        entry = RegistryEntry(instance_aid, load_file_aid, module_aid, life_cycle, privileges,
                              associated_sd)

        def do() -> None:
            self._runtime.nvm.write(entry.cell, entry.encode())
            self._runtime._applets.pop(instance_aid, None)
            applet = self._runtime.applet(instance_aid)
            if applet is None:
                raise RegistryError(f"applet not created: {self._runtime.last_error}")
            context = self._runtime.context_for(load_file_aid)
            with entered(context, instance_aid):
                self._runtime._constructing.add(id(context))
                try:
                    applet.install(params)
                finally:
                    self._runtime._constructing.discard(id(context))

        try:
            self._atomically(do)
        except BaseException:
            self._runtime._applets.pop(instance_aid, None)
            raise
        return entry

    def set_life_cycle(self, aid: bytes, state: int) -> RegistryEntry:
        entry = self._runtime.entry(aid)
        if entry is None:
            raise RegistryError(f"no applet {aid.hex().upper()}")
        updated = dataclasses.replace(entry, life_cycle=state)
        self._runtime.nvm.write(updated.cell, updated.encode())
        if not updated.selectable:
            for number in range(len(self._runtime._channels)):
                if self._runtime.selected_on(number) == aid:
                    self._runtime._deselect_on(number)
        return updated

    def set_privileges(self, aid: bytes, privileges: bytes) -> RegistryEntry:
        entry = self._runtime.entry(aid)
        if entry is None:
            raise RegistryError(f"no applet {aid.hex().upper()}")
        updated = dataclasses.replace(entry, privileges=privileges)
        self._runtime.nvm.write(updated.cell, updated.encode())
        return updated

    def set_associated_sd(self, aid: bytes, sd_aid: bytes | None) -> RegistryEntry:
        entry = self._runtime.entry(aid)
        if entry is None:
            raise RegistryError(f"no applet {aid.hex().upper()}")
        updated = dataclasses.replace(entry, associated_sd=sd_aid)
        self._runtime.nvm.write(updated.cell, updated.encode())
        return updated

    def delete(self, aid: bytes) -> None:
        """Delete an applet instance with its persistent fields and keys (atomically)."""
        entry = self._runtime.entry(aid)
        if entry is None:
            raise RegistryError(f"no applet {aid.hex().upper()}")
        for number in range(len(self._runtime._channels)):
            if self._runtime.selected_on(number) == aid:
                self._runtime._deselect_on(number)
        applet = self._runtime.applet(aid)
        context = self._runtime.context_for(entry.load_file_aid)
        if applet is not None:
            try:
                with entered(context, aid):
                    applet.on_uninstall()
            except Exception as exc:
                self._runtime.last_error = f"on_uninstall() raised {exc!r}"

        def do() -> None:
            nvm = self._runtime.nvm
            nvm.erase_prefix(f"a/{aid.hex()}/")
            nvm.erase_prefix(f"k/{aid.hex()}/")
            nvm.write(entry.cell, None)

        self._atomically(do)
        self._runtime._applets.pop(aid, None)

    def forward_data(self, aid: bytes, data: bytes) -> bytes:
        """Personalisation: hand ``data`` to an applet associated with the calling SD."""
        caller = self._runtime.current_entry()
        entry = self._runtime.entry(aid)
        if entry is None:
            raise ISOException(SW.FILE_NOT_FOUND, f"no applet {aid.hex().upper()}")
        if caller is not None and entry.associated_sd != caller.aid:
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "applet is not associated with this SD")
        applet = self._runtime.applet(aid)
        if applet is None:
            raise ISOException(SW.FILE_NOT_FOUND, "applet code is not on this card")
        with entered(self._runtime.context_for(entry.load_file_aid), aid):
            return applet.process_data(data)

    def _atomically(self, action: Callable[[], object]) -> None:
        """Run ``action`` in a transaction, or inside the caller's if one is open."""
        nvm = self._runtime.nvm
        if nvm.in_transaction:
            action()
            return
        nvm.begin()
        try:
            action()
        except BaseException:
            if nvm.in_transaction and nvm.lost_power is None:
                nvm.abort()
            raise
        nvm.commit()

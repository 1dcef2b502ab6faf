"""The applet API: what an applet written in Python sees of the card.

An applet subclasses :class:`Applet` and declares its persistent state as class attributes::

    class Counter(Applet):
        value = PersistentInt(size=4)

        def process(self, apdu: APDU) -> bytes | None:
            ...

Life of an applet: ``__init__`` runs at every power-up (RAM set-up: transient arrays, key
handles); :meth:`Applet.install` runs once, when the applet is installed (persistent set-up);
:meth:`Applet.select`, :meth:`Applet.process`, :meth:`Applet.deselect` run as the card is
used. Persistent fields live in the card's NVM (journalled in transactions); transient arrays
live in RAM. Failures are reported with :class:`ISOException` and a status word.
"""

from __future__ import annotations

import abc
import enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import cbor2

from smarthydra.card.apdu import SW, CommandAPDU
from smarthydra.card.firewall import CardObject, Shareable, check_access

if TYPE_CHECKING:
    from smarthydra.card.runtime import CardServices

T = TypeVar("T")


class ISOException(Exception):
    """Raised by an applet to answer with a status word (and optionally data)."""

    def __init__(self, sw: int, message: str = "", data: bytes = b"") -> None:
        super().__init__(message or f"status {sw:04X}")
        self.sw = sw
        self.data = data


class APDU(CardObject):
    """The command an applet is processing (a runtime entry-point object)."""

    def __init__(self, command: CommandAPDU, channel: int, selecting: bool) -> None:
        self.command = command
        self.channel = channel
        self.is_selecting = selecting
        self.status = int(SW.OK)

    @property
    def cla(self) -> int:
        return self.command.cla

    @property
    def ins(self) -> int:
        return self.command.ins

    @property
    def p1(self) -> int:
        return self.command.p1

    @property
    def p2(self) -> int:
        return self.command.p2

    @property
    def data(self) -> bytes:
        return self.command.data

    @property
    def ne(self) -> int:
        return self.command.ne

    def set_status(self, sw: int) -> None:
        """Answer with data and a status other than 9000 (e.g. 6310 more data)."""
        if not 0x6000 <= sw <= 0x9FFF:
            raise ValueError(f"{sw:04X} is not a status word")
        self.status = sw


class Applet(CardObject):
    """Base class of every applet. The runtime binds ``card`` and ``aid`` before ``__init__``."""

    #: may be selected on several logical channels at once
    multiselectable: bool = False

    _sh_card: CardServices
    _sh_aid: bytes

    @property
    def card(self) -> CardServices:
        return self._sh_card

    @property
    def aid(self) -> bytes:
        return self._sh_aid

    def install(self, params: bytes) -> None:
        """Called once when the applet is installed, inside the install transaction."""

    def select(self) -> bool:
        """Called when selected; return False to refuse (the card answers 6999)."""
        return True

    def deselect(self) -> None:
        """Called when another applet is selected on this channel or the channel closes."""

    def process(self, apdu: APDU) -> bytes | None:
        """Handle one command (also the SELECT that selected this applet)."""
        if apdu.is_selecting:
            return None
        raise ISOException(SW.INS_NOT_SUPPORTED)

    def process_data(self, data: bytes) -> bytes:
        """Personalisation data forwarded by this applet's security domain."""
        raise ISOException(SW.FUNCTION_NOT_SUPPORTED, "applet takes no personalisation data")

    def get_shareable(self, client_aid: bytes | None, parameter: int) -> Shareable | None:
        """Hand out a shareable-interface object to ``client_aid``, or None to refuse."""
        return None

    def on_uninstall(self) -> None:
        """Called before the applet is deleted."""


# --- the card's CBOR codec -----------------------------------------------------------------


class CBOR:
    """Deterministic CBOR (RFC 8949 §4.2.1) for applets, done by the card (as a Java Card
    applet uses the platform's crypto rather than carrying its own): restricted applet code
    cannot import ``cbor2``. Only plain data crosses: integers, byte and text strings,
    booleans, null, arrays (as lists) and maps (as dicts); ``decode`` strips one outer tag
    (e.g. COSE_Sign1's 18) and refuses anything else - floats, nested tags, undefined, depth
    over :data:`MAX_DEPTH` - with ``6A80``.
    """

    MAX_DEPTH = 16

    @staticmethod
    def encode(value: Any, tag: int | None = None) -> bytes:
        plain = CBOR._plain(value, 0)
        try:
            return cbor2.dumps(plain if tag is None else cbor2.CBORTag(int(tag), plain),
                               canonical=True)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ISOException(SW.WRONG_DATA, f"cannot encode: {exc}") from None

    @staticmethod
    def decode(data: bytes) -> Any:
        try:
            value = cbor2.loads(bytes(data))
        except Exception:  # cbor2 raises several types for bad input
            raise ISOException(SW.WRONG_DATA, "not CBOR") from None
        if isinstance(value, cbor2.CBORTag):
            value = value.value
        return CBOR._plain(value, 0)

    @staticmethod
    def _plain(value: Any, depth: int) -> Any:
        if depth > CBOR.MAX_DEPTH:
            raise ISOException(SW.WRONG_DATA, "CBOR nested too deeply")
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, list | tuple):
            return [CBOR._plain(item, depth + 1) for item in value]
        if isinstance(value, dict) or hasattr(value, "items"):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                key = CBOR._plain(key, depth + 1)
                if isinstance(key, list | dict):
                    raise ISOException(SW.WRONG_DATA, "CBOR map keys are scalars here")
                out[key] = CBOR._plain(item, depth + 1)
            return out
        raise ISOException(SW.WRONG_DATA, f"CBOR {type(value).__name__} is not plain data")


# --- persistent fields -------------------------------------------------------------------


def _cell(obj: Applet, name: str) -> str:
    return f"a/{object.__getattribute__(obj, '_sh_aid').hex()}/{name}"


class PersistentField(abc.ABC, Generic[T]):
    """A field of an applet kept in NVM. Each assignment is one atomic persistent write."""

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> PersistentField[T]: ...
    @overload
    def __get__(self, obj: Applet, objtype: type | None = None) -> T: ...

    def __get__(self, obj: Applet | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        card = object.__getattribute__(obj, "_sh_card")
        raw = card._runtime.nvm.read(_cell(obj, self.name))
        return self.default if raw is None else self.decode(raw)

    def __set__(self, obj: Applet, value: T) -> None:
        card = object.__getattribute__(obj, "_sh_card")
        card._runtime.nvm.write(_cell(obj, self.name), self.encode(value))

    @abc.abstractmethod
    def encode(self, value: T) -> bytes:
        """The bytes stored in the applet's persistent cell for ``value``."""

    @abc.abstractmethod
    def decode(self, raw: bytes) -> T:
        """The value back from the stored bytes."""


class PersistentInt(PersistentField[int]):
    def __init__(self, default: int = 0, *, size: int = 4, signed: bool = False) -> None:
        super().__init__(default)
        self.size = size
        self.signed = signed

    def encode(self, value: int) -> bytes:
        try:
            return int(value).to_bytes(self.size, "big", signed=self.signed)
        except OverflowError:
            raise ValueError(f"{value} does not fit the {self.size}-byte field {self.name}") from None

    def decode(self, raw: bytes) -> int:
        return int.from_bytes(raw, "big", signed=self.signed)


class PersistentBytes(PersistentField[bytes]):
    def __init__(self, default: bytes = b"", *, max_size: int = 256) -> None:
        super().__init__(default)
        self.max_size = max_size

    def encode(self, value: bytes) -> bytes:
        value = bytes(value)
        if len(value) > self.max_size:
            raise ValueError(f"{len(value)} bytes exceed the field {self.name} ({self.max_size})")
        return value

    def decode(self, raw: bytes) -> bytes:
        return raw


class PersistentBool(PersistentField[bool]):
    def __init__(self, default: bool = False) -> None:
        super().__init__(default)

    def encode(self, value: bool) -> bytes:
        return b"\x01" if value else b"\x00"

    def decode(self, raw: bytes) -> bool:
        return raw == b"\x01"


class PersistentArray(CardObject):
    """A fixed-size byte array in NVM; every element or slice assignment is one write."""

    def __init__(self, services: CardServices, cell: str, size: int) -> None:
        self._services = services
        self._cell = cell
        self._size = size

    def _read(self) -> bytes:
        raw = self._services._runtime.nvm.read(self._cell)
        return raw if raw is not None else bytes(self._size)

    def __len__(self) -> int:
        check_access(self)
        return self._size

    def __bytes__(self) -> bytes:
        check_access(self)
        return self._read()

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> bytes: ...

    def __getitem__(self, index: int | slice) -> int | bytes:
        check_access(self)
        return self._read()[index]

    def __setitem__(self, index: int | slice, value: int | bytes) -> None:
        check_access(self)
        content = bytearray(self._read())
        if isinstance(index, slice):
            assert not isinstance(value, int)
            before = len(content)
            content[index] = bytes(value)
            if len(content) != before:
                raise ValueError("a persistent array has a fixed size")
        else:
            assert isinstance(value, int)
            content[index] = value
        self._services._runtime.nvm.write(self._cell, bytes(content))


class PersistentArrayField:
    """Declares a :class:`PersistentArray` of ``size`` bytes on an applet."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Applet | None, objtype: type | None = None) -> PersistentArray:
        if obj is None:
            raise AttributeError("a persistent array exists per applet instance")
        card = object.__getattribute__(obj, "_sh_card")
        return PersistentArray(card, _cell(obj, self.name), self.size)


# --- transient memory --------------------------------------------------------------------


class ClearEvent(enum.Enum):
    ON_RESET = "reset"
    ON_DESELECT = "deselect"


class TransientArray(CardObject):
    """A byte array in RAM: never journalled, cleared on reset (and on deselect if asked).

    A clear-on-deselect array may only be used while its owner's applet is the one selected
    on the channel being served.
    """

    def __init__(self, services: CardServices, size: int, clear_on: ClearEvent) -> None:
        self._services = services
        self._buffer = bytearray(size)
        self.clear_on = clear_on

    def _check(self) -> None:
        check_access(self)
        if self.clear_on is ClearEvent.ON_DESELECT:
            owner = object.__getattribute__(self, "_sh_owner")
            self._services._runtime.check_deselect_transient(owner)

    def _clear(self) -> None:
        buffer = object.__getattribute__(self, "_buffer")
        buffer[:] = bytes(len(buffer))

    def __len__(self) -> int:
        self._check()
        return len(self._buffer)

    def __bytes__(self) -> bytes:
        self._check()
        return bytes(self._buffer)

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> bytes: ...

    def __getitem__(self, index: int | slice) -> int | bytes:
        self._check()
        if isinstance(index, slice):
            return bytes(self._buffer[index])
        return self._buffer[index]

    def __setitem__(self, index: int | slice, value: int | bytes) -> None:
        self._check()
        if isinstance(index, slice):
            assert not isinstance(value, int)
            updated = bytearray(self._buffer)
            updated[index] = bytes(value)
            if len(updated) != len(self._buffer):
                raise ValueError("a transient array has a fixed size")
            self._buffer[:] = updated
        else:
            assert isinstance(value, int)
            self._buffer[index] = value

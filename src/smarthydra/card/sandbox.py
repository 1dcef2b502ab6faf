"""Restricted execution of post-issuance applets (GlobalPlatform load files from packages).

ROM applets ship in the card image and run as ordinary Python. An applet loaded after
issuance arrives as an :class:`~smarthydra.card.package.AppletPackage` and runs here:

At load (refused with :class:`SandboxViolation`, nothing is registered):

* the source is compiled with RestrictedPython (the Zope project's maintained AST-rewriting
  sandbox), under a stricter policy: imports only of card-API names (``from
  smarthydra.card.applet import Applet, ...``), resolved from an injected table, never
  through the import system; no names outside the module's own and a small set of guarded
  builtins (so no ``open``, ``eval``, ``exec``, ``compile``, ``getattr``, ``type``,
  ``globals``...); no ``_``-prefixed names or attributes (RestrictedPython); no lambdas,
  generators, decorators, class keywords, dunder methods other than ``__init__``, f-string
  format specs;
* the module body runs under the load budget; every class it makes goes through a class
  builder that checks the bases, the declared persistent storage and wraps every method in
  a metered entry point; the manifest's classes must be applets of the package.

At run time, per command (the outermost call into restricted code opens a meter):

* **instructions**: every loop iteration (``while`` bodies, every ``for`` and comprehension
  step through the guarded iterator) and every function entry costs one step; work done in
  C is charged too (a step per 64 items a comparison or builtin method scans, a fixed cost
  per key operation and per write to an applet's fields); the budget is counted, not timed,
  so runs are deterministic;
* **call depth** of restricted functions;
* **memory**: every operation that builds a sequence or a big integer (``+``, ``*``,
  ``**``, ``<<``, ``bytes(n)``, ``join``, ``extend``, ``to_bytes``...) is checked against
  the largest object allowed and charged to a per-command allocation budget; transient
  arrays per package and persistent fields per applet class have quotas.

A breach raises :class:`AppletRunaway` (or :class:`AppletMemoryExceeded`) and is sticky:
restricted code that catches it fails again at its next step, and the entry point raises it
regardless of what the code returned. The runtime answers ``6F00`` (its ``last_error`` names
the breach) and aborts the open transaction; nothing else on the card is affected.

Objects: attribute reads go through a guard (builtin types: an allow-list of methods; card
API and package classes: public names only; anything else, e.g. functions, modules,
frames: nothing), writes only to the package's own objects (the firewall checks the context
too), and every class a package makes is a :class:`~.firewall.CardObject`, so the firewall
owns it. Cross-package access is only through :class:`~.firewall.Shareable` interfaces.

Not offered to applets: ``super()`` (call base methods by name, e.g. ``Applet.process(self,
apdu)``), generators, lambdas, ``%`` string formatting, ``str.format``.
"""

from __future__ import annotations

import ast
import contextvars
import hashlib
import operator
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import RestrictingNodeTransformer

from smarthydra.card import apdu as apdu_module
from smarthydra.card import applet as applet_module
from smarthydra.card import firewall as firewall_module
from smarthydra.card import keys as keys_module
from smarthydra.card.applet import (
    Applet,
    ClearEvent,
    ISOException,
    PersistentArrayField,
    PersistentBool,
    PersistentBytes,
    PersistentField,
    PersistentInt,
)
from smarthydra.card.firewall import CardObject, SecurityException, Shareable, active_frame
from smarthydra.card.package import CARD_API_VERSION, AppletPackage, PackageError
from smarthydra.card.registry import LOAD_FILE_DATA_PREFIX, LoadFile
from smarthydra.card.runtime import CardManager, CardServices, LoadFileResolver

#: NVM cell (under the load file's data prefix) holding the encoded package
PACKAGE_CELL = "package"


class SandboxViolation(PackageError):
    """The package's code is refused at load: it uses something applets may not."""


class AppletRunaway(Exception):
    """Restricted code exceeded its execution budget; the command is stopped."""


class AppletMemoryExceeded(AppletRunaway):
    """Restricted code tried to allocate more than its budget allows."""


class SandboxAccessDenied(SecurityException):
    """Restricted code reached for an attribute or object it may not use."""


@dataclass(frozen=True)
class ExecutionBudget:
    """Limits for restricted code. Counted, never timed, so results are deterministic."""

    instructions: int = 100_000  # loop steps + function entries per command
    load_instructions: int = 100_000  # for the module body at load
    call_depth: int = 32  # nested restricted function calls
    max_object_bytes: int = 32_768  # largest sequence (or integer, in bytes) one step builds
    alloc_bytes: int = 262_144  # sequence bytes built per command, all steps together
    persistent_bytes: int = 16_384  # persistent fields declared per applet class
    transient_bytes: int = 4_096  # transient arrays per package per power-up
    key_operation_cost: int = 100  # steps charged for using a key handle (ECDSA etc.)
    persistent_write_cost: int = 10  # steps charged per write to an applet or persistent array

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"budget {name} must be a positive integer")


DEFAULT_BUDGET = ExecutionBudget()


# --- the meter ------------------------------------------------------------------------------


class _Meter:
    __slots__ = ("allocated", "breach", "budget", "depth", "limit", "steps")

    def __init__(self, budget: ExecutionBudget, limit: int) -> None:
        self.budget = budget
        self.limit = limit
        self.steps = 0
        self.depth = 0
        self.allocated = 0
        self.breach: AppletRunaway | None = None

    def fail(self, error: AppletRunaway) -> AppletRunaway:
        if self.breach is None:
            self.breach = error
        return self.breach


_METER: contextvars.ContextVar[_Meter | None] = contextvars.ContextVar("sandbox_meter",
                                                                     default=None)


def _active_meter() -> _Meter:
    meter = _METER.get()
    if meter is None:
        raise AppletRunaway("restricted code ran outside a metered entry point")
    if meter.breach is not None:
        raise _again(meter.breach)
    return meter


def _again(breach: AppletRunaway) -> AppletRunaway:
    return type(breach)(*breach.args)


def _steps(n: int) -> None:
    meter = _active_meter()
    meter.steps += n
    if meter.steps > meter.limit:
        raise meter.fail(AppletRunaway(f"instruction budget of {meter.limit} steps exceeded"))


def _tick() -> None:
    _steps(1)


def _enter() -> None:
    meter = _active_meter()
    meter.steps += 1
    if meter.steps > meter.limit:
        raise meter.fail(AppletRunaway(f"instruction budget of {meter.limit} steps exceeded"))
    meter.depth += 1
    if meter.depth > meter.budget.call_depth:
        raise meter.fail(AppletRunaway(
            f"call depth of {meter.budget.call_depth} restricted calls exceeded"))


def _leave() -> None:
    meter = _METER.get()
    if meter is not None and meter.depth > 0:
        meter.depth -= 1


def _charge(size: int) -> None:
    """Account for a sequence of ``size`` bytes/items about to be built."""
    meter = _active_meter()
    if size > meter.budget.max_object_bytes:
        raise meter.fail(AppletMemoryExceeded(
            f"an object of {size} bytes exceeds the limit of {meter.budget.max_object_bytes}"))
    meter.allocated += max(size, 0)
    if meter.allocated > meter.budget.alloc_bytes:
        raise meter.fail(AppletMemoryExceeded(
            f"allocation budget of {meter.budget.alloc_bytes} bytes per command exceeded"))


def _int_bits(bits: int) -> None:
    _charge((bits + 7) // 8)


def _metered(function: Callable[..., Any], qualname: str, budget: ExecutionBudget
             ) -> Callable[..., Any]:
    """An entry point into restricted code: opens a meter unless one is running."""

    def entry(*args: Any, **kwargs: Any) -> Any:
        if _METER.get() is not None:
            return function(*args, **kwargs)
        meter = _Meter(budget, budget.instructions)
        token = _METER.set(meter)
        try:
            result = function(*args, **kwargs)
        except BaseException:
            if meter.breach is not None:
                raise _again(meter.breach) from None
            raise
        finally:
            _METER.reset(token)
        if meter.breach is not None:  # caught inside and carried on: still stopped
            raise _again(meter.breach)
        return result

    entry.__name__ = function.__name__
    entry.__qualname__ = qualname
    return entry


# --- guarded operations ----------------------------------------------------------------------

_SEQUENCES = (bytes, bytearray, str, list, tuple)


def _is(obj: Any, kinds: type | tuple[type, ...]) -> bool:
    """``isinstance`` by the real type only: never asks a (foreign) object for __class__."""
    return issubclass(type(obj), kinds)


def _check_binop(op: str, a: Any, b: Any) -> None:
    if op == "+":
        if _is(a, _SEQUENCES) and _is(b, _SEQUENCES):
            _charge(len(a) + len(b))
    elif op == "*":
        if _is(a, _SEQUENCES) and _is(b, int):
            _charge(len(a) * max(b, 0))
        elif _is(b, _SEQUENCES) and _is(a, int):
            _charge(len(b) * max(a, 0))
        elif _is(a, int) and _is(b, int):
            _int_bits(abs(a).bit_length() + abs(b).bit_length())
    elif op == "**":
        if _is(a, int) and _is(b, int) and b > 0 and abs(a) > 1:
            _int_bits(abs(a).bit_length() * b)
    elif op == "<<":
        if _is(a, int) and _is(b, int) and b > 0:
            _int_bits(abs(a).bit_length() + b)
    elif op == "%" and _is(a, (str, bytes, bytearray)):
        raise SandboxAccessDenied("sandbox: printf-style % formatting is not available")


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "<<": operator.lshift,
    ">>": operator.rshift, "&": operator.and_, "|": operator.or_, "^": operator.xor,
    "@": operator.matmul,
}
_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor, "@=": operator.imatmul,
}


def _binop(op: str, a: Any, b: Any) -> Any:
    _check_binop(op, a, b)
    return _BINOPS[op](a, b)


def _inplacevar(op: str, a: Any, b: Any) -> Any:
    if op not in _INPLACE:
        raise SandboxAccessDenied(f"sandbox: operator {op} is not available")
    _check_binop(op[:-1], a, b)
    return _INPLACE[op](a, b)


class _Ticking:
    """An iterator that costs one step per item (loops and comprehensions go through it)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Iterator[Any]) -> None:
        self._inner = inner

    def __iter__(self) -> _Ticking:
        return self

    def __next__(self) -> Any:
        _tick()
        return next(self._inner)


def _getiter(obj: Any) -> _Ticking:
    return _Ticking(iter(obj))


def _materialise(iterable: Iterable[Any]) -> list[Any]:
    """Iterate in restricted terms: each item a step, the list bounded in size."""
    items: list[Any] = []
    meter = _active_meter()
    for item in _getiter(iterable):
        items.append(item)
        if len(items) > meter.budget.max_object_bytes:
            _charge(len(items))
    return items


def _getitem(obj: Any, key: Any) -> Any:
    return obj[key]


def _apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


# guarded builtins ---------------------------------------------------------------------------


def _g_bytes(source: Any = b"", *rest: Any) -> bytes:
    if _is(source, int):
        _charge(source)
        return bytes(source)
    if _is(source, (str, bytes, bytearray)) or hasattr(type(source), "__bytes__"):
        return bytes(source, *rest)
    items = _materialise(source)
    _charge(len(items))
    return bytes(items)


def _g_bytearray(source: Any = b"", *rest: Any) -> bytearray:
    if _is(source, int):
        _charge(source)
        return bytearray(source)
    if _is(source, (str, bytes, bytearray)) or hasattr(type(source), "__bytes__"):
        return bytearray(source if _is(source, bytearray) else bytes(source, *rest))
    items = _materialise(source)
    _charge(len(items))
    return bytearray(items)


def _g_list(source: Iterable[Any] = ()) -> list[Any]:
    return _materialise(source)


def _g_tuple(source: Iterable[Any] = ()) -> tuple[Any, ...]:
    return tuple(_materialise(source))


def _g_set(source: Iterable[Any] = ()) -> set[Any]:
    return set(_materialise(source))


def _g_frozenset(source: Iterable[Any] = ()) -> frozenset[Any]:
    return frozenset(_materialise(source))


def _g_dict(source: Any = (), **kwargs: Any) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    if _is(source, dict):
        result.update(source)
    else:
        for key, value in _materialise(source):
            result[key] = value
    result.update(kwargs)
    return result


def _g_enumerate(source: Iterable[Any], start: int = 0) -> Iterator[tuple[int, Any]]:
    return enumerate(_getiter(source), start)


def _g_zip(*sources: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    return zip(*(_getiter(s) for s in sources), strict=False)


def _g_reversed(source: Any) -> Iterator[Any]:
    items: list[Any] = _materialise(source)
    items.reverse()
    return iter(items)


def _g_sum(source: Iterable[Any], start: int = 0) -> Any:
    total = start
    for item in _getiter(source):
        total = _binop("+", total, item)
    return total


def _g_min(*args: Any, **kwargs: Any) -> Any:
    if not args:
        raise TypeError("min expected at least 1 argument")
    return min(*(args if len(args) > 1 else (_materialise(args[0]),)), **kwargs)


def _g_max(*args: Any, **kwargs: Any) -> Any:
    if not args:
        raise TypeError("max expected at least 1 argument")
    return max(*(args if len(args) > 1 else (_materialise(args[0]),)), **kwargs)


def _g_repr(obj: Any) -> str:
    text = repr(obj)
    _charge(len(text))
    return text


def _g_str(obj: Any = "", *args: Any) -> str:
    text = str(obj, *args)
    _charge(len(text))
    return text


def _g_hex(number: int) -> str:
    text = hex(number)
    _charge(len(text))
    return text


def _formatted(text: str) -> str:
    """An f-string's result, charged like any other new string."""
    _charge(len(text))
    return text


def _g_any(source: Iterable[Any]) -> bool:
    return any(_getiter(source))


def _g_all(source: Iterable[Any]) -> bool:
    return all(_getiter(source))


class _GuardedType(type):
    """Stands in for a builtin type: ``isinstance`` works, construction is guarded."""

    real: type
    factory: Callable[..., Any]

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.real)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls.real)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.factory(*args, **kwargs)


def _guarded_type(real: type, factory: Callable[..., Any]) -> _GuardedType:
    return _GuardedType(real.__name__, (), {"real": real, "factory": staticmethod(factory)})


_GUARDED_TYPES = {
    real.__name__: _guarded_type(real, factory)
    for real, factory in ((bytes, _g_bytes), (bytearray, _g_bytearray), (list, _g_list),
                          (tuple, _g_tuple), (set, _g_set), (frozenset, _g_frozenset),
                          (dict, _g_dict), (str, _g_str))
}

_SAFE_BUILTINS: dict[str, Any] = {
    "abs": abs, "bool": bool, "callable": callable, "chr": chr, "divmod": divmod,
    "hash": hash, "hex": _g_hex, "int": int, "isinstance": isinstance, "issubclass": issubclass,
    "len": len, "ord": ord, "range": range, "repr": _g_repr, "round": round, "slice": slice,
    **_GUARDED_TYPES,
    "enumerate": _g_enumerate, "zip": _g_zip, "reversed": _g_reversed, "sum": _g_sum,
    "min": _g_min, "max": _g_max, "any": _g_any, "all": _g_all,
    "ArithmeticError": ArithmeticError, "AssertionError": AssertionError,
    "AttributeError": AttributeError, "Exception": Exception, "IndexError": IndexError,
    "KeyError": KeyError, "LookupError": LookupError, "NotImplementedError": NotImplementedError,
    "OverflowError": OverflowError, "RuntimeError": RuntimeError, "TypeError": TypeError,
    "ValueError": ValueError, "ZeroDivisionError": ZeroDivisionError,
}

#: what ``from <module> import <name>`` may bring in: the card API, nothing else
CARD_API: Mapping[str, Mapping[str, Any]] = {
    "smarthydra.card.applet": {
        name: getattr(applet_module, name)
        for name in ("Applet", "APDU", "ISOException", "PersistentInt", "PersistentBytes",
                     "PersistentBool", "PersistentArrayField", "ClearEvent", "CBOR")
    },
    "smarthydra.card.apdu": {"SW": apdu_module.SW},
    "smarthydra.card.firewall": {
        "Shareable": firewall_module.Shareable,
        "SecurityException": firewall_module.SecurityException,
    },
    "smarthydra.card.keys": {"KeyError_": keys_module.KeyError_,
                             "CardCrypto": keys_module.CardCrypto},
}
#: card services whose (static) methods restricted code calls: metered like key operations
#: (crypto) or by size (the CBOR codec), and what they build charged to the allocation budget
_SERVICE_CLASSES: Mapping[type, bool] = {applet_module.CBOR: False, keys_module.CardCrypto: True}
_API_TABLE = {f"{module}.{name}": value for module, names in CARD_API.items()
              for name, value in names.items()}
_API_BASES = (Applet, Shareable, CardObject)
_API_EXCEPTIONS = (ISOException, SecurityException, keys_module.KeyError_)


# attribute guard ----------------------------------------------------------------------------

_STR_COMMON = frozenset({"startswith", "endswith", "find", "rfind", "index", "count", "split",
                         "strip", "lstrip", "rstrip", "upper", "lower", "join"})
_BUILTIN_ATTRIBUTES: dict[type, frozenset[str]] = {
    int: frozenset({"bit_length", "to_bytes"}),
    bool: frozenset({"bit_length", "to_bytes"}),
    bytes: _STR_COMMON | {"hex", "decode"},
    bytearray: _STR_COMMON | {"hex", "decode", "append", "extend", "pop", "insert", "clear",
                              "copy", "reverse", "remove"},
    str: _STR_COMMON | {"encode", "isdigit", "isalnum"},
    list: frozenset({"append", "extend", "pop", "insert", "clear", "copy", "index", "count",
                     "remove", "reverse", "sort"}),
    tuple: frozenset({"index", "count"}),
    dict: frozenset({"get", "keys", "values", "items", "pop", "setdefault", "clear", "copy"}),
    set: frozenset({"add", "discard", "remove", "pop", "clear", "copy"}),
    frozenset: frozenset({"copy"}),
    range: frozenset({"start", "stop", "step"}),  # not index/count: linear in C
}
_BUILTIN_CLASS_ATTRIBUTES: dict[type, frozenset[str]] = {
    int: frozenset({"from_bytes"}),
    bytes: frozenset({"fromhex"}),
    bytearray: frozenset({"fromhex"}),
}


def _is_card_class(cls: type) -> bool:
    if "_sh_package" in vars(cls):
        return True
    module = getattr(cls, "__module__", "") or ""
    return module.startswith("smarthydra.card.") and module != __name__


def _class_defines(cls: type, name: str) -> bool:
    return any(_is_card_class(k) and name in vars(k) for k in cls.__mro__)


_LINEAR = (bytes, bytearray, str, list, tuple)


def _linear_cost(obj: Any) -> None:
    """Operations that scan a sequence in C cost a step per 64 items (beyond the first 256)."""
    if type(obj) in _LINEAR and len(obj) > 256:
        _steps(len(obj) >> 6)


def _operand(obj: Any) -> Any:
    """Wraps comparison operands: ``x in big_list`` and ``a == b`` scan in C."""
    _linear_cost(obj)
    return obj


def _sized_method(value: Any, owner: Any, name: str) -> Any:
    """Builtin methods: sizes checked before (when an argument sets them) and after."""
    if name == "to_bytes":
        def to_bytes(length: int = 1, *args: Any, **kwargs: Any) -> bytes:
            _charge(length)
            return value(length, *args, **kwargs)  # type: ignore[no-any-return]
        return to_bytes
    if name == "join":
        def join(parts: Iterable[Any]) -> Any:
            items = _materialise(parts)
            _charge(sum(len(p) for p in items if _is(p, _SEQUENCES))
                    + len(owner) * max(len(items) - 1, 0))
            return value(items)
        return join
    if name == "extend":
        def extend(items: Iterable[Any]) -> None:
            listed = _materialise(items)
            _check_size(len(owner) + len(listed))
            _charge(len(listed))
            value(listed)
        return extend
    if name == "append" or name == "insert":
        def grow(*args: Any) -> None:
            _check_size(len(owner) + 1)
            value(*args)
        return grow

    def method(*args: Any, **kwargs: Any) -> Any:
        _linear_cost(owner)
        result = value(*args, **kwargs)
        if type(result) in _LINEAR:
            _charge(len(result))
        return result

    return method


def _getattr(obj: Any, name: str, *default: Any) -> Any:
    if type(name) is not str or name.startswith("_"):
        raise SandboxAccessDenied(f"sandbox: attribute {name!r} is not available")
    kind = type(obj)
    allowed = _BUILTIN_ATTRIBUTES.get(kind)
    if allowed is not None:
        if name not in allowed:
            raise SandboxAccessDenied(
                f"sandbox: {kind.__name__}.{name} is not available to applets")
        return _sized_method(getattr(obj, name), obj, name)
    if _is(obj, type):
        real = obj.real if _is(obj, _GuardedType) else obj
        if real in _BUILTIN_CLASS_ATTRIBUTES and name in _BUILTIN_CLASS_ATTRIBUTES[real]:
            return getattr(real, name)
        if _is_card_class(obj) and _class_defines(obj, name):
            if obj in _SERVICE_CLASSES:
                return _service_call(getattr(obj, name), crypto=_SERVICE_CLASSES[obj])
            return getattr(obj, name)
        raise SandboxAccessDenied(f"sandbox: attribute {name!r} of class "
                                  f"{getattr(obj, '__name__', '?')} is not available")
    if _is(obj, BaseException) and name == "args":
        return obj.args
    if _is(obj, Shareable) and not _is_card_class(kind) and name in kind.interface:
        return getattr(obj, name)  # another context's shareable interface: the firewall checks
    if _is_card_class(kind):
        try:
            instance_dict = object.__getattribute__(obj, "__dict__")
        except AttributeError:
            instance_dict = {}
        if _class_defines(kind, name) or name in instance_dict:
            return _card_attribute(obj, name)
        for base in kind.__mro__:  # e.g. SW members are ints
            if base in _BUILTIN_ATTRIBUTES and name in _BUILTIN_ATTRIBUTES[base]:
                return _sized_method(getattr(obj, name), obj, name)
        if default:
            return default[0]
        raise AttributeError(f"{kind.__name__} has no attribute {name!r}")
    raise SandboxAccessDenied(
        f"sandbox: attributes of {kind.__name__} objects are not available to applets")


def _service_call(function: Callable[..., Any], *, crypto: bool) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        budget = _active_meter().budget
        size = sum(len(a) for a in args if _is(a, (bytes, bytearray, str)))
        _steps(budget.key_operation_cost if crypto else 1 + (size >> 6))
        result = function(*args)
        if _is(result, (bytes, bytearray, str)):
            _steps(len(result) >> 6)
            _charge(len(result))
        return result

    return call


def _card_attribute(obj: Any, name: str) -> Any:
    value = getattr(obj, name)  # through the firewall for card objects
    if _is(obj, keys_module.KeyHandle):
        budget = _active_meter().budget
        _steps(budget.key_operation_cost)
    if name == "random" and _is_services(obj):
        def random(n: int) -> bytes:
            _charge(n)
            return value(n)  # type: ignore[no-any-return]
        return random
    if name == "make_transient" and _is_services(obj):
        return _transient_quota(obj, value)
    return value


def _is_services(obj: Any) -> bool:
    return type(obj) is CardServices


def _transient_quota(services: Any, make: Callable[..., Any]) -> Callable[..., Any]:
    def make_transient(size: int, clear_on: ClearEvent = ClearEvent.ON_DESELECT) -> Any:
        meter = _active_meter()
        frame = active_frame()
        context = frame.context if frame is not None else None
        used = sum(
            len(object.__getattribute__(array, "_buffer"))
            for array in services._runtime._transients
            if object.__getattribute__(array, "_sh_owner") is context
        )
        if used + int(size) > meter.budget.transient_bytes:
            raise meter.fail(AppletMemoryExceeded(
                f"transient memory quota of {meter.budget.transient_bytes} bytes per package "
                f"exceeded ({used} in use, {size} asked)"))
        return make(size, clear_on)

    return make_transient


class _SequenceWriter:
    """What ``_write_`` hands out for a list or bytearray: slice assignment stays bounded."""

    __slots__ = ("_target",)

    def __init__(self, target: list[Any] | bytearray) -> None:
        self._target = target

    def __setitem__(self, index: Any, value: Any) -> None:
        if _is(index, slice):
            if not _is(value, _SEQUENCES):
                value = _materialise(value)
            _check_size(len(self._target) + len(value))
        self._target[index] = value

    def __delitem__(self, index: Any) -> None:
        del self._target[index]


def _check_size(size: int) -> None:
    meter = _active_meter()
    if size > meter.budget.max_object_bytes:
        raise meter.fail(AppletMemoryExceeded(
            f"an object of {size} bytes exceeds the limit of {meter.budget.max_object_bytes}"))


def _write(obj: Any) -> Any:
    """Only the package's own objects and plain containers may be written to."""
    kind = type(obj)
    if kind is list or kind is bytearray:
        return _SequenceWriter(obj)
    if kind is dict or kind is set:
        return obj  # grows one item per (metered) step
    if _is(obj, applet_module.TransientArray):
        return obj  # fixed size; its own check_access applies
    if _is(obj, (applet_module.PersistentArray, Applet)):  # NVM writes cost more than steps
        _steps(_active_meter().budget.persistent_write_cost)
    if _is(obj, applet_module.PersistentArray):
        return obj
    if not _is(obj, type) and "_sh_package" in vars(kind):
        return obj  # the firewall (CardObject.__setattr__) checks the context
    raise SandboxAccessDenied(
        f"sandbox: applets may not modify {kind.__name__} objects")


# --- static checks and compilation -------------------------------------------------------------

_ALLOWED_DUNDER_METHODS = frozenset({"__init__"})
_ALLOWED_CLASS_NAMESPACE = frozenset({"__module__", "__qualname__", "__doc__", "__init__"})


def _strip_annotations(tree: ast.Module) -> None:
    """Annotations are documentation for applets: never evaluated, never checked."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                        *([args.vararg] if args.vararg else []),
                        *([args.kwarg] if args.kwarg else [])]:
                arg.annotation = None
        body_holder = node
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(body_holder, field, None)
            if not isinstance(statements, list):
                continue
            for index, statement in enumerate(statements):
                if isinstance(statement, ast.AnnAssign):
                    replacement: ast.stmt
                    if statement.value is not None:
                        replacement = ast.Assign(targets=[statement.target],
                                                 value=statement.value)
                    else:
                        replacement = ast.Pass()
                    ast.copy_location(replacement, statement)
                    statements[index] = replacement


class _StaticChecks(ast.NodeVisitor):
    """Rules on top of RestrictedPython's, and the names an applet may use."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.defined: set[str] = set()
        self.loaded: dict[str, int] = {}

    def error(self, node: ast.AST, message: str) -> None:
        self.errors.append(f"line {getattr(node, 'lineno', '?')}: {message}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.error(node, f"import of {alias.name!r} is not allowed; applets use "
                             f"'from <card API module> import <name>' only")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.error(node, "relative imports are not allowed")
            return
        if module == "__future__":
            if any(alias.name != "annotations" for alias in node.names):
                self.error(node, "only 'from __future__ import annotations' is allowed")
            return
        offered = CARD_API.get(module)
        if offered is None:
            self.error(node, f"import from {module!r} is not allowed; applets may import "
                             f"from {sorted(CARD_API)}")
            return
        for alias in node.names:
            if alias.name not in offered:
                self.error(node, f"{module}.{alias.name} is not part of the card API")
            self.defined.add(alias.asname or alias.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.error(node, "lambda is not allowed (use def)")
        self.generic_visit(node)

    def visit_Yield(self, node: ast.Yield) -> None:
        self.error(node, "generators are not allowed")

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self.error(node, "generators are not allowed")

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.decorator_list:
            self.error(node, f"decorators are not allowed ({node.name})")
        if node.name.startswith("__") and node.name not in _ALLOWED_DUNDER_METHODS:
            self.error(node, f"special method {node.name} is not allowed")
        self.defined.add(node.name)
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                    *([args.vararg] if args.vararg else []),
                    *([args.kwarg] if args.kwarg else [])]:
            self.defined.add(arg.arg)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.error(node, "async functions are not allowed")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if node.decorator_list:
            self.error(node, f"class decorators are not allowed ({node.name})")
        if node.keywords:
            self.error(node, f"class keywords are not allowed ({node.name})")
        self.defined.add(node.name)
        self.generic_visit(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        if node.format_spec is not None:
            self.error(node, "format specifications in f-strings are not allowed")
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.defined.add(node.name)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.defined.update(node.names)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loaded.setdefault(node.id, getattr(node, "lineno", 0))
        else:
            self.defined.add(node.id)

    def unknown_names(self) -> list[tuple[str, int]]:
        available = set(_SAFE_BUILTINS) | self.defined | {"None", "True", "False"}
        return sorted(((n, line) for n, line in self.loaded.items() if n not in available),
                      key=lambda item: item[1])


class _CardPolicy(RestrictingNodeTransformer):
    """RestrictedPython's transformer plus steps, guarded arithmetic and card-API imports."""

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        module = node.module or ""
        if module == "__future__":
            return ast.copy_location(ast.Pass(), node)
        assignments: list[ast.stmt] = []
        for alias in node.names:
            self.check_name(node, alias.asname or alias.name)
            value = ast.Subscript(value=ast.Name("_api_", ast.Load()),
                                  slice=ast.Constant(f"{module}.{alias.name}"), ctx=ast.Load())
            assign = ast.Assign(targets=[ast.Name(alias.asname or alias.name, ast.Store())],
                                value=value)
            assignments.append(ast.copy_location(assign, node))
        return assignments

    def visit_Import(self, node: ast.Import) -> Any:
        self.error(node, "imports are not allowed")
        return node

    def visit_While(self, node: ast.While) -> Any:
        node = self.node_contents_visit(node)
        node.body.insert(0, self._call_statement("_tick_", node))
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        visited = super().visit_FunctionDef(node)
        assert isinstance(visited, ast.FunctionDef)
        node = visited
        guarded = ast.Try(body=node.body, handlers=[], orelse=[],
                          finalbody=[self._call_statement("_leave_", node)])
        node.body = [self._call_statement("_enter_", node), ast.copy_location(guarded, node)]
        return node

    def visit_Starred(self, node: ast.Starred) -> Any:
        """``[*x]``, ``f(*x)``: unpacking iterates in C, so it goes through ``_unpack_``."""
        node = self.node_contents_visit(node)
        if isinstance(node.ctx, ast.Load):
            call = ast.Call(func=ast.Name("_unpack_", ast.Load()), args=[node.value],
                            keywords=[])
            node.value = ast.copy_location(call, node.value)
        return node

    def visit_Compare(self, node: ast.Compare) -> Any:
        node = self.node_contents_visit(node)
        node.left = self._operand(node.left)
        node.comparators = [self._operand(c) for c in node.comparators]
        return node

    @staticmethod
    def _operand(expression: ast.expr) -> ast.expr:
        if isinstance(expression, ast.Constant):
            return expression
        call = ast.Call(func=ast.Name("_operand_", ast.Load()), args=[expression], keywords=[])
        return ast.copy_location(call, expression)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> Any:
        node = self.node_contents_visit(node)
        call = ast.Call(func=ast.Name("_formatted_", ast.Load()), args=[node], keywords=[])
        return ast.copy_location(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        symbol = {ast.Add: "+", ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<",
                  ast.Mod: "%"}.get(type(node.op))
        if symbol is None:
            return node
        call = ast.Call(func=ast.Name("_binop_", ast.Load()),
                        args=[ast.Constant(symbol), node.left, node.right], keywords=[])
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        """``self.x += 1`` and ``buf[i] += 1`` (simple targets) become guarded assignments."""
        target = node.target
        simple_base = isinstance(target, (ast.Attribute, ast.Subscript)) and isinstance(
            target.value, ast.Name)
        if not simple_base:
            return super().visit_AugAssign(node)
        operator_text = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=",
                         ast.FloorDiv: "//=", ast.Mod: "%=", ast.Pow: "**=",
                         ast.LShift: "<<=", ast.RShift: ">>=", ast.BitAnd: "&=",
                         ast.BitOr: "|=", ast.BitXor: "^=", ast.MatMult: "@="}[type(node.op)]
        assert isinstance(target, (ast.Attribute, ast.Subscript))
        assert isinstance(target.value, ast.Name)
        base = target.value.id
        self.check_name(node, base)
        value = self.visit(node.value)
        read: ast.expr
        store: ast.expr
        writer = ast.Call(func=ast.Name("_write_", ast.Load()),
                          args=[ast.Name(base, ast.Load())], keywords=[])
        if isinstance(target, ast.Attribute):
            if target.attr.startswith("_"):
                self.error(node, f'"{target.attr}" is an invalid attribute name because it '
                                 'starts with "_".')
                return node
            read = ast.Call(func=ast.Name("_getattr_", ast.Load()),
                            args=[ast.Name(base, ast.Load()), ast.Constant(target.attr)],
                            keywords=[])
            store = ast.Attribute(value=writer, attr=target.attr, ctx=ast.Store())
        else:
            if not isinstance(target.slice, (ast.Name, ast.Constant)):
                self.error(node, "augmented assignment of items needs a simple index")
                return node
            index = self.visit(target.slice)
            read = ast.Call(func=ast.Name("_getitem_", ast.Load()),
                            args=[ast.Name(base, ast.Load()), index], keywords=[])
            store = ast.Subscript(value=writer, slice=index, ctx=ast.Store())
        combined = ast.Call(func=ast.Name("_inplacevar_", ast.Load()),
                            args=[ast.Constant(operator_text), read, value], keywords=[])
        assign = ast.Assign(targets=[store], value=combined)
        ast.copy_location(assign, node)
        ast.fix_missing_locations(assign)
        return assign

    @staticmethod
    def _call_statement(name: str, where: ast.AST) -> ast.stmt:
        call = ast.Call(func=ast.Name(name, ast.Load()), args=[], keywords=[])
        return ast.copy_location(ast.Expr(call), where)


_CODE_CACHE: dict[bytes, Any] = {}


def compile_applet(source: str, filename: str = "<applet>") -> Any:
    """Static checks and restricted compilation; raises :class:`SandboxViolation`."""
    key = hashlib.sha256(source.encode("utf-8")).digest()
    cached = _CODE_CACHE.get(key)
    if cached is not None:
        return cached
    try:
        tree = ast.parse(source, filename, "exec")
    except SyntaxError as exc:
        raise SandboxViolation(f"line {exc.lineno}: syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SandboxViolation(f"source does not parse: {exc}") from None
    _strip_annotations(tree)
    checks = _StaticChecks()
    checks.visit(tree)
    problems = list(checks.errors)
    for name, line in checks.unknown_names():
        problems.append(f"line {line}: name {name!r} is not available to applets")
    errors: list[str] = []
    warnings: list[str] = []
    policy = _CardPolicy(errors, warnings, {})
    try:
        transformed = policy.visit(tree)
    except RecursionError:
        raise SandboxViolation("source nests too deeply") from None
    problems += errors
    problems += [f"{w} (refused)" for w in warnings]
    if problems:
        raise SandboxViolation("applet refused: " + "; ".join(problems))
    ast.fix_missing_locations(transformed)
    try:
        code = compile(transformed, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise SandboxViolation(f"applet does not compile: {exc}") from None
    if len(_CODE_CACHE) > 64:
        _CODE_CACHE.clear()
    _CODE_CACHE[key] = code
    return code


# --- loading ----------------------------------------------------------------------------------


def _persistent_size(cls: type) -> int:
    total = 0
    seen: set[str] = set()
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)
            if isinstance(value, PersistentInt):
                total += value.size
            elif isinstance(value, PersistentBytes):
                total += value.max_size
            elif isinstance(value, PersistentBool):
                total += 1
            elif isinstance(value, PersistentArrayField):
                total += value.size
            elif isinstance(value, PersistentField):
                raise SandboxViolation(f"{cls.__name__}.{name}: unknown persistent field type")
    return total


def _class_builder(package_aid: bytes, budget: ExecutionBudget) -> Callable[..., type]:
    made: set[int] = set()

    def build(name: str, bases: tuple[type, ...], namespace: dict[str, Any],
              **keywords: Any) -> type:
        if keywords:
            raise SandboxViolation(f"class {name}: class keywords are not allowed")
        for base in bases:
            allowed = (id(base) in made or base in _API_BASES or base in _API_EXCEPTIONS
                       or (base in _SAFE_BUILTINS.values() and isinstance(base, type)
                           and issubclass(base, Exception)))
            if not allowed:
                raise SandboxViolation(f"class {name} may not derive from "
                                       f"{getattr(base, '__name__', base)!r}")
        if not any(issubclass(base, (CardObject, BaseException)) for base in bases):
            bases = (*bases, CardObject)  # every package object is owned by its context
        for key in namespace:
            if key.startswith("__") and key not in _ALLOWED_CLASS_NAMESPACE:
                raise SandboxViolation(f"class {name} may not define {key}")
        qualname = str(namespace.get("__qualname__", name))
        for key, value in list(namespace.items()):
            if isinstance(value, types.FunctionType):
                namespace[key] = _metered(value, f"{qualname}.{key}", budget)
        namespace["_sh_package"] = package_aid
        cls = type(name, bases, namespace)
        if issubclass(cls, Applet):
            size = _persistent_size(cls)
            if size > budget.persistent_bytes:
                raise SandboxViolation(
                    f"applet {name} declares {size} bytes of persistent fields; the quota is "
                    f"{budget.persistent_bytes}")
        made.add(id(cls))
        return cls

    return build


def _check_api(package: AppletPackage) -> None:
    major, minor = package.manifest.api_version
    if major != CARD_API_VERSION[0] or minor > CARD_API_VERSION[1]:
        raise PackageError(
            f"package needs card API {major}.{minor}; this card offers "
            f"{CARD_API_VERSION[0]}.{CARD_API_VERSION[1]}")


def load_restricted(package: AppletPackage, *, budget: ExecutionBudget = DEFAULT_BUDGET
                    ) -> dict[bytes, type[Applet]]:
    """Check, compile and run the package's module; module AID -> restricted applet class.

    Raises :class:`SandboxViolation` (static or load-time refusal) or :class:`PackageError`
    (card API version). Each call makes fresh classes and a fresh module namespace.
    """
    _check_api(package)
    manifest = package.manifest
    code = compile_applet(package.source, f"<applet {manifest.aid.hex().upper()}>")
    namespace: dict[str, Any] = {
        "__builtins__": {**_SAFE_BUILTINS, "__build_class__": __build_class__},
        "__name__": f"applet_{manifest.aid.hex()}",
        "__metaclass__": _class_builder(manifest.aid, budget),
        "_api_": dict(_API_TABLE),
        "_getattr_": _getattr,
        "_getitem_": _getitem,
        "_getiter_": _getiter,
        "_write_": _write,
        "_apply_": _apply,
        "_inplacevar_": _inplacevar,
        "_binop_": _binop,
        "_unpack_": _materialise,
        "_operand_": _operand,
        "_formatted_": _formatted,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_tick_": _tick,
        "_enter_": _enter,
        "_leave_": _leave,
    }
    meter = _Meter(budget, budget.load_instructions)
    token = _METER.set(meter)
    try:
        exec(code, namespace)
    except SandboxViolation:
        raise
    except AppletRunaway as exc:
        breach = meter.breach or exc
        raise SandboxViolation(f"module body stopped at load: {breach}") from None
    except Exception as exc:
        if meter.breach is not None:
            raise SandboxViolation(f"module body stopped at load: {meter.breach}") from None
        raise SandboxViolation(
            f"module body raised {type(exc).__name__} at load: {exc}") from None
    finally:
        _METER.reset(token)
    if meter.breach is not None:
        raise SandboxViolation(f"module body stopped at load: {meter.breach}")
    classes: dict[bytes, type[Applet]] = {}
    for class_name, modules in manifest.applets.items():
        cls = namespace.get(class_name)
        if not (isinstance(cls, type) and issubclass(cls, Applet)
                and vars(cls).get("_sh_package") == manifest.aid):
            raise SandboxViolation(
                f"manifest names {class_name}, which the module does not define as an applet")
        for module in modules:
            classes[module] = cls
    return classes


def load_file_from_package(package: AppletPackage, *,
                           budget: ExecutionBudget = DEFAULT_BUDGET) -> LoadFile:
    """The runtime's view of a package: a load file of restricted applet classes."""
    return LoadFile(package.aid, load_restricted(package, budget=budget),
                    package.manifest.name)


def register_package(manager: CardManager, package: AppletPackage, *,
                     budget: ExecutionBudget = DEFAULT_BUDGET,
                     associated_sd: bytes | None = None) -> LoadFile:
    """Load a verified package onto the card (the GP LOAD path calls this after DAP checks).

    Registers the load file (post-issuance, not ROM) and stores the encoded package in NVM
    in one transaction, so that :func:`package_resolver` rebuilds it at the next power-up.
    """
    if any(lf.aid == package.aid for lf in manager.load_files()) or manager.entry(package.aid):
        raise PackageError(f"AID {package.aid.hex().upper()} is already in use on this card")
    load_file = load_file_from_package(package, budget=budget)
    encoded = package.encode()

    def store() -> None:
        manager.register_load_file(load_file, rom=False, associated_sd=associated_sd)
        manager.write_load_file_data(package.aid, PACKAGE_CELL, encoded)

    manager._atomically(store)
    return load_file


def package_resolver(budget: ExecutionBudget = DEFAULT_BUDGET,
                     fallback: LoadFileResolver | None = None) -> LoadFileResolver:
    """A resolver for :class:`~.card.CardProfile`: rebuilds stored packages at power-up.

    A stored package that no longer loads (e.g. a card API change) leaves its load file
    without code: its instances do not run, the rest of the card does.
    """

    def resolve(aid: bytes, read: Callable[[str], bytes | None]) -> LoadFile | None:
        raw = read(f"{LOAD_FILE_DATA_PREFIX}{aid.hex()}/{PACKAGE_CELL}")
        if raw is None:
            return fallback(aid, read) if fallback is not None else None
        try:
            return load_file_from_package(AppletPackage.decode(raw), budget=budget)
        except PackageError:
            return None

    return resolve

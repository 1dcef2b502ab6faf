"""The applet firewall: one context per load file, and who may touch which object.

Every object an applet creates (:class:`CardObject`) records the context active when it was
made. While code of context *A* runs, touching an object owned by context *B* raises
:class:`SecurityException`, with three exceptions, as in Java Card:

* the runtime's own context is privileged and reaches everything;
* objects owned by the runtime (the APDU, the card services) are entry points, reachable
  from every context;
* a :class:`Shareable` lets other contexts call the methods named in its ``interface``;
  each call switches to the owner's context, and the owner can ask who called
  (:func:`previous_context_aid`).

The active context lives in a :class:`contextvars.ContextVar` so that several cards can run
in one process. Python itself cannot stop code that deliberately goes around
``object.__getattribute__``; post-issuance applets run restricted (no such names) so that
this check is the only way to another context's objects.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar


class SecurityException(Exception):
    """A firewall rule was broken: access to another context's object."""


@dataclass(eq=False)
class Context:
    """A firewall context: one per load file, plus the runtime's own (``package_aid`` None)."""

    name: str
    package_aid: bytes | None

    @property
    def privileged(self) -> bool:
        return self.package_aid is None

    def __repr__(self) -> str:
        aid = self.package_aid.hex().upper() if self.package_aid is not None else "runtime"
        return f"Context({self.name!r}, {aid})"


RUNTIME_CONTEXT = Context("runtime", None)


@dataclass(frozen=True)
class Frame:
    """One level of the context stack: who is running, for which applet, called by whom."""

    context: Context
    applet_aid: bytes | None
    previous: Frame | None


_FRAME: contextvars.ContextVar[Frame | None] = contextvars.ContextVar("card_frame", default=None)


def active_frame() -> Frame | None:
    return _FRAME.get()


def active_context() -> Context | None:
    frame = _FRAME.get()
    return frame.context if frame is not None else None


def previous_context_aid() -> bytes | None:
    """The applet AID active in the calling context; None if the runtime called."""
    frame = _FRAME.get()
    if frame is None or frame.previous is None:
        return None
    return frame.previous.applet_aid


@contextlib.contextmanager
def entered(context: Context, applet_aid: bytes | None) -> Iterator[Frame]:
    """Run a block in ``context`` on behalf of ``applet_aid`` (a context switch)."""
    frame = Frame(context, applet_aid, _FRAME.get())
    token = _FRAME.set(frame)
    try:
        yield frame
    finally:
        _FRAME.reset(token)


def _denied(obj: object, name: str, frame: Frame, owner: Context) -> SecurityException:
    return SecurityException(
        f"firewall: {frame.context.name} may not access {name!r} of a "
        f"{type(obj).__name__} owned by {owner.name}"
    )


def check_access(obj: CardObject, what: str = "contents") -> None:
    """Raise unless the active context may touch ``obj`` (for dunder paths that skip
    ``__getattribute__``, like ``obj[i]``)."""
    frame = _FRAME.get()
    if frame is None:
        return
    owner: Context | None = object.__getattribute__(obj, "_sh_owner")
    if owner is None or owner is frame.context or frame.context.privileged or owner.privileged:
        return
    raise _denied(obj, what, frame, owner)


class CardObject:
    """An object on the card, owned by the context that created it."""

    _sh_owner: Context | None
    _sh_applet: bytes | None

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = object.__new__(cls)
        frame = _FRAME.get()
        object.__setattr__(obj, "_sh_owner", frame.context if frame is not None else None)
        object.__setattr__(obj, "_sh_applet", frame.applet_aid if frame is not None else None)
        return obj

    def __getattribute__(self, name: str) -> Any:
        frame = _FRAME.get()
        if frame is not None:
            owner: Context | None = object.__getattribute__(self, "_sh_owner")
            if (
                owner is not None
                and owner is not frame.context
                and not frame.context.privileged
                and not owner.privileged
            ):
                return _cross_context(self, name, frame, owner)
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        check_access(self, name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        check_access(self, name)
        object.__delattr__(self, name)


class Shareable(CardObject):
    """A shareable-interface object: other contexts may call the methods in ``interface``."""

    interface: ClassVar[frozenset[str]] = frozenset()


def _cross_context(obj: CardObject, name: str, frame: Frame, owner: Context) -> Any:
    cls = type(obj)  # type(), not isinstance(): __class__ would recurse through the check
    if issubclass(cls, Shareable) and name in cls.interface:
        method = object.__getattribute__(obj, name)
        if callable(method):
            applet_aid: bytes | None = object.__getattribute__(obj, "_sh_applet")
            return _switching(method, owner, applet_aid)
    raise _denied(obj, name, frame, owner)


def _switching(method: Callable[..., Any], owner: Context, applet_aid: bytes | None) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        with entered(owner, applet_aid):
            return method(*args, **kwargs)

    return call

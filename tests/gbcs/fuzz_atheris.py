"""libFuzzer harness (atheris) for the GBCS parser, end to end.

Covers the envelope, the payload codecs (xDLMS, GBZ, DER, A-XDR, ZCL bodies, typed cluster
commands), GBT streams, the use-case
decoder (payload typed by its codec, sensitive blocks located by grammar and decrypted with a
fixed Z), and the JSON use-case parameters ``gbcs build --params`` reads.

Run standalone, e.g. ``python tests/gbcs/fuzz_atheris.py -runs=100000``. Every input must
either decode or raise a :class:`~smarthydra.gbcs.errors.GbcsError` subclass (decoders raise
``GbcsDecodeError``; decryption ``DecryptionFailed``; parameters ``ParamsError``); anything
else (another exception, a hang caught by ``-timeout``) is a finding. pytest does not collect
this file; ``tests/gbcs/test_fuzz_atheris.py`` runs it for a bounded number of runs when
atheris is installed, and calls :func:`one_input` under hypothesis always.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

_FIXED_Z = bytes(range(32))
_DECODERS: list[Callable[[bytes], object]] = []
_CATCH: tuple[type[BaseException], ...] = ()
_DECODE_ERROR: tuple[type[BaseException], ...] = ()
_JSON: list[Callable[[object], object]] = []
# The base classes: an error must be one of their specific subclasses (Truncated, BadField,
# DecryptionFailed, ParamsError, ...), never a bare base class.
_GENERIC: tuple[type[BaseException], ...] = ()


def _load() -> None:
    """Import the GBCS modules (inside atheris' instrumentation when fuzzing)."""
    global _CATCH, _DECODE_ERROR, _GENERIC
    from smarthydra.gbcs.axdr import decode_data_exact
    from smarthydra.gbcs.der import decode_der
    from smarthydra.gbcs.envelope import CraFlag, decode_message
    from smarthydra.gbcs.errors import (
        GbcsDecodeError,
        GbcsError,
        GbcsSecurityError,
    )
    from smarthydra.gbcs.gbz import decode_gbz, decode_zcl_body
    from smarthydra.gbcs.gbz_clusters import decode_cluster_command
    from smarthydra.gbcs.sensitive import find_protected_blocks
    from smarthydra.gbcs.usecase import UseCaseParams, decode_payload, decode_use_case_message
    from smarthydra.gbcs.xdlms import decode_xdlms

    def zcl(b: bytes) -> object:
        return decode_zcl_body(b[0] if b else 0, b[1] if len(b) > 1 else 0, b[2:]).encode()

    def cluster(b: bytes) -> object:
        if len(b) < 2:
            return None
        command = decode_cluster_command(0x0700 | (b[0] & 0x07), 0x19, b[1] & 0x07, b[2:])
        return None if command is None else command.encode()

    def params(obj: object) -> object:
        return UseCaseParams.from_json(obj, counter=1).payload.encode()

    _DECODERS[:] = [
        lambda b: decode_message(b).encode(),
        lambda b: decode_xdlms(b).encode(),
        lambda b: decode_gbz(b, alert=False).encode(),
        lambda b: decode_gbz(b, alert=True).encode(),
        lambda b: decode_der(b).encode(),
        lambda b: decode_data_exact(b).encode(),
        lambda b: decode_payload(b, CraFlag.RESPONSE).encode(),
        lambda b: find_protected_blocks(b),
        lambda b: find_protected_blocks(b, alert=True),
        zcl,
        cluster,
        lambda b: decode_use_case_message(b, encryption_z=_FIXED_Z).to_json(),
    ]
    _JSON[:] = [params]
    _DECODE_ERROR = (GbcsDecodeError,)
    _CATCH = (GbcsError,)
    _GENERIC = (GbcsError, GbcsDecodeError, GbcsSecurityError)


def _check_specific(exc: BaseException) -> None:
    if type(exc) in _GENERIC:
        raise AssertionError(f"unspecific {type(exc).__name__}: {exc}") from exc


def one_input(data: bytes) -> None:
    """Feed ``data`` to every decoder, and (when it is JSON) to the parameters reader."""
    if not _DECODERS:
        _load()
    for index, decode in enumerate(_DECODERS):
        try:
            decode(data)
        except _CATCH as exc:
            # Only the use-case decoder (which decrypts) may raise beyond decode errors.
            if index != len(_DECODERS) - 1 and not isinstance(exc, _DECODE_ERROR):
                raise
            _check_specific(exc)
    try:
        obj: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    for reader in _JSON:
        try:
            reader(obj)
        except _CATCH as exc:
            _check_specific(exc)


def main() -> None:
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports(include=["smarthydra.gbcs"]):
        _load()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""libFuzzer harness (atheris) for the GBCS decoders: envelope, xDLMS, GBZ, DER, A-XDR.

Run standalone, e.g. ``python tests/gbcs/fuzz_atheris.py -runs=100000``. Every decoder must
either return a value that re-encodes to its input or raise GbcsDecodeError; anything else
(another exception, a hang caught by ``-timeout``) is a finding. pytest does not collect this
file; ``tests/gbcs/test_fuzz_atheris.py`` runs it for a bounded number of runs when atheris
is installed and skips otherwise.
"""

from __future__ import annotations

import sys

from smarthydra.gbcs.axdr import decode_data_exact
from smarthydra.gbcs.der import decode_der
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.errors import GbcsDecodeError
from smarthydra.gbcs.gbz import decode_gbz
from smarthydra.gbcs.xdlms import decode_xdlms


def one_input(data: bytes) -> None:
    """Feed ``data`` to every decoder; the first byte picks nothing, all decoders see it all."""
    for decode in (
        lambda b: decode_message(b).encode(),
        lambda b: decode_xdlms(b).encode(),
        lambda b: decode_gbz(b, alert=False).encode(),
        lambda b: decode_gbz(b, alert=True).encode(),
        lambda b: decode_der(b).encode(),
        lambda b: decode_data_exact(b).encode(),
    ):
        try:
            decode(data)
        except GbcsDecodeError:
            continue


def main() -> None:
    import atheris  # type: ignore[import-not-found]

    atheris.instrument_all()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""The card as a separate OS process: ``python -m smarthydra.card.process --image FILE``.

The parent talks vpcd framing over stdin/stdout (see :mod:`smarthydra.card.vpcd`). The card
image is a file, so killing this process at any instant is a power cut: the next process
powers the same image up and finds the last committed state.
"""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from smarthydra.card.card import Card
from smarthydra.card.memory import FileBacking
from smarthydra.card.rng import DeterministicRandom, OsRandom, RandomSource
from smarthydra.card.vpcd import FrameDecoder, encode_frame, handle_message


def serve_stream(card: Card, reader: BinaryIO, writer: BinaryIO) -> None:
    """Serve vpcd-framed messages from ``reader`` until it closes."""
    decoder = FrameDecoder()
    while True:
        data = reader.read1(65536) if hasattr(reader, "read1") else reader.read(1)
        if not data:
            return
        for payload in decoder.feed(data):
            reply = handle_message(card, payload, card.power_on)
            if reply is not None:
                writer.write(encode_frame(reply))
                writer.flush()


def build_card(image: str, profile: str, *, durable: bool = True, seed: str | None = None
               ) -> Card:
    from smarthydra.card.transport import resolve_profile

    rng: RandomSource = DeterministicRandom(seed) if seed is not None else OsRandom()
    return Card(FileBacking(image, durable=durable), resolve_profile(profile), rng=rng)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a smarthydra card over stdin/stdout")
    parser.add_argument("--image", required=True, help="card image file (created if absent)")
    parser.add_argument("--profile", default="examples")
    parser.add_argument("--no-fsync", action="store_true", help="skip fsync (benchmarks)")
    parser.add_argument("--test-seed", default=None, help="deterministic RNG (tests only)")
    args = parser.parse_args(argv)
    try:
        card = build_card(args.image, args.profile, durable=not args.no_fsync,
                          seed=args.test_seed)
        serve_stream(card, sys.stdin.buffer, sys.stdout.buffer)
    except (ValueError, OSError) as exc:
        print(f"smarthydra card: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

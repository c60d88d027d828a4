"""Write the captioned synthetic world (pe_dense.data.world): splits, zero-shot set and clips.

Usage: ``python tools/make_world.py OUT [--seed 0] [--image-size 96] [--train 8000] [--val 500]
[--test 500] [--zeroshot 480] [--clips 12] [--clip-frames 16] [--heldout red:triangle,...]``.
The same arguments always give the same files; rerunning into a complete world with the same
settings does nothing, other settings into it are refused (use a new folder).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from pe_dense.data.world import DEFAULT_HELDOUT, write_world

_DEFAULTS = {"train": 8000, "val": 500, "test": 500, "zeroshot": 480, "clips": 12,
             "clip_frames": 16}


def _heldout(text: str) -> list[list[str]]:
    pairs = [p.strip().split(":") for p in text.split(",") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError(f"--heldout {text!r}: write colour:shape pairs joined "
                                         "by commas, e.g. red:triangle,green:star")
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="output folder (new or empty)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=96, help="image side in pixels")
    for name, default in _DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default,
                            help=f"default {default}")
    parser.add_argument("--heldout", type=_heldout,
                        default=[list(p) for p in DEFAULT_HELDOUT],
                        help="colour:shape combos kept out of train/val/clips (default "
                             + ",".join(f"{c}:{s}" for c, s in DEFAULT_HELDOUT) + ")")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    try:
        meta = write_world(args.out, seed=args.seed, image_size=args.image_size,
                           heldout=args.heldout, **{k: getattr(args, k) for k in _DEFAULTS})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    splits = ", ".join(f"{k} {v}" for k, v in meta["splits"].items())
    print(f"world {args.out}: {splits}, {meta['clips']} clips x {meta['clip_frames']} frames, "
          f"{meta['image_size']} px, seed {meta['seed']} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Thin wrapper: ``python tools/train.py CONFIG [options]`` == ``pe-dense train CONFIG [options]``.

Distributed: ``torchrun --nproc_per_node N tools/train.py CONFIG --launcher pytorch``.
"""

import sys

from pe_dense.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))

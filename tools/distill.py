"""Thin script for ``pe-dense distill``, e.g. under torchrun:

    torchrun --nproc_per_node 2 tools/distill.py configs/distill/CONFIG.py --launcher pytorch
"""

import sys

from pe_dense.cli import main

if __name__ == "__main__":
    sys.exit(main(["distill", *sys.argv[1:]]))

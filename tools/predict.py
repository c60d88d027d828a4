"""Thin wrapper: ``python tools/predict.py CONFIG CKPT INPUT... --out DIR`` ==
``pe-dense predict ...``.

Several processes (each predicts its share of the inputs, process 0 merges the results):
``torchrun --nproc_per_node N tools/predict.py CONFIG CKPT INPUT... --out DIR``.
"""

import sys

from pe_dense.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))

"""Thin wrapper: ``python tools/test.py CONFIG CHECKPOINT [options]`` == ``pe-dense test ...``."""

import sys

from pe_dense.cli import main

if __name__ == "__main__":
    sys.exit(main(["test", *sys.argv[1:]]))

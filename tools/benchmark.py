"""Thin wrapper: ``python tools/benchmark.py [options]`` == ``pe-dense benchmark [options]``."""

import sys

from pe_dense.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))

"""The pe-dense command line: pe-dense COMMAND [options] (pe-dense COMMAND -h for each).

Each sub-command lives in ``pe_dense/cli/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports happen inside ``run``. The CLI owns the console (logging
set-up, progress bars); the work is done by library functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

__all__ = ["main", "COMMANDS"]

# name -> module under pe_dense.cli
COMMANDS = {
    "info": "info",
    "features": "features",
    "convert": "convert",
    "train": "train",
    "test": "test",
    "predict": "predict",
    "benchmark": "benchmark",
    "demo": "demo",
    "distill": "distill",
    "distill-cache": "distill_cache",
    "distill-eval": "distill_eval",
    "track": "track",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pe-dense", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"pe_dense.cli.{module_name}")
        doc = (module.__doc__ or name).strip().split("\n")[0]
        command = sub.add_parser(name, help=doc, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"pe-dense {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The pe-dense command line: pe-dense COMMAND [options] (pe-dense COMMAND -h for each).

Each sub-command lives in ``pe_dense/cli/<module>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; their top level imports nothing heavy (no torch), heavy imports happen
inside ``run``. The top-level parser is built from the plain :data:`COMMANDS` table, and only
the chosen command's module is imported, so ``pe-dense --help`` and ``pe-dense CMD --help``
start in a fraction of a second. The CLI owns the console (logging set-up, progress bars); the
work is done by library functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["main", "COMMANDS", "build_parser"]

# name -> (module under pe_dense.cli, one-line help shown by `pe-dense --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "List the PE variants with parameter counts, or describe one."),
    "features": ("features", "Write PCA pictures of PE features for images (or a built-in one)."),
    "convert": ("convert", "Convert a PE checkpoint between official, timm and detectron2."),
    "train": ("train", "Train a task model from an mmengine config."),
    "test": ("test", "Evaluate a checkpoint on a config's test split (metrics.json)."),
    "consolidate": ("consolidate", "Merge a sharded (FSDP) checkpoint folder into one file."),
    "predict": ("predict", "Run a trained model on images: drawings and predictions.json."),
    "benchmark": ("benchmark", "Measure backbone speed, memory and FLOPs."),
    "probe": ("probe", "Compare encoders with frozen-backbone probes: seg, depth, track."),
    "demo": ("demo", "Live demo on a camera, video, frames, stream or the built-in clip."),
    "export": ("export", "Export a PE variant or a task model to ONNX / torch.export (+ int8)."),
    "distill": ("distill", "Distil a student's last layer to frozen teachers."),
    "distill-cache": ("distill_cache", "Precompute teacher targets for a distillation config."),
    "distill-eval": ("distill_eval", "Evaluate a distilled student: cosine, PCA, curves."),
    "track": ("track", "Track objects through DAVIS videos by label propagation; J&F."),
    "classify": ("classify", "Zero-shot image classification with PE-Core's text tower."),
    "segment-text": ("segment_text", "Segment images from text prompts (PE-Core, or a bridge)."),
    "push": ("push", "Share a trained model as a hub repo (config, weights, card)."),
}

# Top-level options (they take no value, so the first other word is the command).
_GLOBAL_FLAGS = {"-v", "--verbose", "--debug"}


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not a top-level option)."""
    for word in argv:
        if word not in _GLOBAL_FLAGS:
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the command chosen in ``argv`` gets its options (its module imported)."""
    parser = argparse.ArgumentParser(prog="pe-dense", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging and full error details (e.g. every mismatching key)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen_command(argv)
    for name, (module_name, help_line) in COMMANDS.items():
        if name != chosen:
            sub.add_parser(name, help=help_line, add_help=False)
            continue
        module = importlib.import_module(f"pe_dense.cli.{module_name}")
        command = sub.add_parser(name, help=help_line, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError, OSError) as exc:
        if args.debug:
            raise
        from pe_dense.cli.common import error_lines

        print("\n".join(error_lines(args.command, exc, args.verbose)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pe-dense {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

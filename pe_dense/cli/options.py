"""Options several commands share, declared once: one flag, one default, one help text each.

Every command that takes a device, config overrides, a PE variant, weights, an output folder,
a work dir, an exported runtime or ``--verbose`` adds it with the function here, so
``pe-dense CMD --help`` reads the same everywhere. No heavy imports (``--help`` stays fast).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["DEFAULT_MODEL", "DEFAULT_CLIP_MODEL", "add_device_option", "add_cfg_options",
           "add_model_option", "add_weights_option", "add_output_option", "add_work_dir_option",
           "add_launcher_option", "add_verbose_option", "add_run_options",
           "add_runtime_options", "open_runtime"]

DEFAULT_MODEL = "PE-Spatial-T16-512"  # commands on dense features
DEFAULT_CLIP_MODEL = "PE-Core-B16-224"  # commands that need the text tower


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device``: ``auto`` (CUDA when torch sees a GPU, else the CPU) or any torch name."""
    parser.add_argument("--device", default="auto",
                        help="auto (default: CUDA when available, else cpu), cpu, cuda, cuda:1")


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options KEY=VALUE ...``: dotted overrides of config entries (checked)."""
    parser.add_argument("--cfg-options", nargs="+", default=None, metavar="KEY=VALUE",
                        help="override config entries, e.g. train_cfg.max_iters=1000 "
                             "optim_wrapper.optimizer.lr=2e-4 (keys are checked)")


def add_model_option(parser: argparse.ArgumentParser, clip: bool = False) -> None:
    """``--model``: a PE variant name or ``timm/<model name>`` (any encoder behind the backbone
    contract); ``clip=True`` for commands that need a text tower (PE-Core only)."""
    what = "PE variant name" if clip else ("PE variant name or timm/<model name>, e.g. "
                                           "timm/vit_small_patch16_dinov3")
    parser.add_argument("--model", default=DEFAULT_CLIP_MODEL if clip else DEFAULT_MODEL,
                        help=f"{what} (default %(default)s; pe-dense info lists PE variants)")


def add_weights_option(parser: argparse.ArgumentParser) -> None:
    """``--weights``: a checkpoint for the ``--model`` (path or ``hf://``); none: random."""
    parser.add_argument("--weights", default=None,
                        help="checkpoint path or hf://facebook/NAME (default: random weights; "
                             "the outputs say so)")


def add_output_option(parser: argparse.ArgumentParser, required: bool = False,
                      default: str | None = None, when_missing: str | None = None) -> None:
    """``--out``: the output folder (``when_missing``: what is used when it is not given)."""
    fallback = f" (default {default})" if default else (
        f" (default: {when_missing})" if when_missing else "")
    parser.add_argument("--out", required=required, default=default,
                        help=f"output folder, created if needed{fallback}")


def add_work_dir_option(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``: where a run's checkpoints, logs and results go."""
    parser.add_argument("--work-dir", default=None,
                        help="checkpoints, logs and results (default work_dirs/<config name>)")


def add_launcher_option(parser: argparse.ArgumentParser) -> None:
    """``--launcher none|pytorch``."""
    parser.add_argument("--launcher", choices=("none", "pytorch"), default="none",
                        help="'pytorch' under torchrun for several processes")


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` after the command too (``pe-dense train CONFIG --verbose``); it sets the
    same flag as ``pe-dense --verbose CMD``."""
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="everything on the console (the engine's environment dump, config "
                             "and per-iteration lines) and full error details")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a config-driven run (train, test, distill): work dir, config overrides,
    launcher, verbose."""
    add_work_dir_option(parser)
    add_cfg_options(parser)
    add_launcher_option(parser)
    add_verbose_option(parser)


def add_runtime_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--runtime torch|onnxruntime`` and ``--onnx PATH``; ``what`` says which export fits."""
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime"),
                        help="torch (eager, default) or onnxruntime (CPU) running --onnx")
    parser.add_argument("--onnx", metavar="PATH",
                        help=f"with --runtime onnxruntime: {what} written by pe-dense export")


def open_runtime(args: argparse.Namespace) -> Any:
    """The ONNX Runtime session for ``--runtime onnxruntime --onnx PATH``, None for torch."""
    if args.runtime == "torch":
        if args.onnx:
            raise ValueError("--onnx runs with --runtime onnxruntime; add it (or drop --onnx)")
        return None
    if not args.onnx:
        raise ValueError("--runtime onnxruntime needs --onnx PATH (an .onnx file written by "
                         "pe-dense export)")
    from pe_dense.runtime import open_session

    return open_session(args.onnx, "onnxruntime")

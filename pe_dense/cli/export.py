"""Export a PE variant or a trained task model to ONNX or torch.export, verified against eager.

  pe-dense export PE-Spatial-B16-512 --format onnx --out b16.onnx --resolution 512 --dynamic
  pe-dense export PE-Spatial-T16-512 --layers 3,7,11 --format onnx --out t16.onnx --int8
  pe-dense export configs/seg/upernet_pe-spatial-t16_camvid_cpu.py --checkpoint ckpt.pth \
      --format onnx --out seg.onnx --resolution 512,704
  pe-dense export PE-Spatial-T16-512 --format torch --out t16.pt2 --dynamic

What the graph computes (input x: (B, 3, H, W) float32 in [-1, 1], i.e. uint8 RGB / 127.5 - 1):
a variant -> the last block's tokens (B, T, C), or with --layers one (B, C, H/16, W/16) map per
block; a segmentation config -> logits (B, K, H, W); a depth config -> metres (B, 1, H, W); a
detection config -> the pyramid maps p2..p6 only: the RPN and RoI heads (proposals, NMS, masks)
stay in PyTorch (pe-dense predict --runtime onnxruntime binds them to the exported pyramid).

The file is verified right after writing on a random and a real image (the built-in scene or
--image), and with --dynamic also at another size and batch: max abs / relative error and cosine
against eager PyTorch are printed; beyond 1e-4 relative error the command fails (exit 2) and
leaves no file. --int8 also writes OUT_STEM.int8.onnx (ONNX Runtime dynamic quantisation: int8
weights) and prints its cosine to the fp32 eager outputs.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from pe_dense.cli.options import add_weights_option

log = logging.getLogger(__name__)


def _size(text: str) -> tuple[int, int]:
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected H or H,W in pixels") from exc
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r}: expected H or H,W in pixels")
    return (values[0], values[-1])


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected block indices like 3,7,11") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL_OR_CONFIG",
                        help="a PE variant name (pe-dense info) or a task config (.py)")
    parser.add_argument("--checkpoint", help="trained task checkpoint (with a config)")
    add_weights_option(parser)
    parser.add_argument("--format", default="onnx", help="onnx (default) or torch (.pt2)")
    parser.add_argument("--out", required=True, help="output file (.onnx or .pt2)")
    parser.add_argument("--resolution", type=_size, default=None, metavar="H[,W]",
                        help="input size in pixels (default: the variant's / 512)")
    parser.add_argument("--dynamic", action="store_true",
                        help="batch, height and width as dynamic axes")
    parser.add_argument("--layers", type=_ints, default=None, metavar="I,J,...",
                        help="variant only: export these blocks' maps (forward_intermediates)")
    parser.add_argument("--window-size", type=int, default=0, metavar="N",
                        help="variant only: windowed (ViTDet) attention with N x N windows")
    parser.add_argument("--global-blocks", type=_ints, default=None, metavar="I,J,...",
                        help="with --window-size: blocks that stay global (default: ViTDet's)")
    parser.add_argument("--int8", action="store_true",
                        help="also write OUT_STEM.int8.onnx (dynamic int8 quantisation)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    parser.add_argument("--image", help="a real image for the verification (default: built-in)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="max relative error of fp32 outputs (default 1e-4)")


def _build(args: argparse.Namespace):
    """(model, source name, random weights?) for a variant name or a task config."""
    from pe_dense import create_backbone, list_models
    from pe_dense.backbone.variants import vitdet_global_blocks

    if args.model in list_models() or args.model.startswith("timm/"):
        if args.checkpoint:
            raise ValueError("--checkpoint is for task configs; a variant takes --weights")
        kw = {}
        if args.window_size:
            layers = create_backbone(args.model).num_layers
            kw = dict(window_size=args.window_size,
                      global_blocks=tuple(args.global_blocks or vitdet_global_blocks(layers)))
        model = create_backbone(args.model, weights=args.weights, **kw)
        return model, args.model, not args.weights
    if not args.model.endswith(".py"):
        raise ValueError(f"{args.model!r} is neither a PE variant (pe-dense info lists them), "
                         "a timm/<model name> nor a task config (.py)")
    if args.weights or args.window_size or args.layers:
        raise ValueError("--weights, --window-size and --layers are for variants; a config "
                         "takes --checkpoint")
    from pe_dense.engine.build import load_model

    if not Path(args.model).is_file():
        raise FileNotFoundError(f"config {args.model} does not exist")
    loaded = load_model(args.model, args.checkpoint, device="cpu")
    return loaded.model, Path(args.model).stem, args.checkpoint is None


def run(args: argparse.Namespace) -> int:
    from pe_dense.data.images import read_rgb
    from pe_dense.export import export_model

    if args.format not in ("onnx", "torch"):
        raise ValueError(f"unknown --format {args.format!r}: use onnx or torch")
    start = time.perf_counter()
    model, source, random_weights = _build(args)
    if random_weights:
        log.warning("%s has random weights (no --weights / --checkpoint)", source)
    resolution = args.resolution or (getattr(model, "image_size", 512),) * 2
    result = export_model(
        model, args.out, args.format, resolution, args.dynamic, args.layers, args.int8,
        args.opset, read_rgb(args.image) if args.image else None, source, args.tolerance,
        random_weights)
    spec = result.spec
    print(f"{source} -> {result.path} ({spec.kind}: x {resolution[0]}x{resolution[1]}"
          f"{' dynamic' if spec.dynamic else ''} -> {', '.join(spec.outputs)}; "
          f"{result.path.stat().st_size / 2**20:.1f} MiB, {time.perf_counter() - start:.0f} s)")
    print("fp32 vs eager PyTorch:")
    for check in result.checks:
        print("  " + check.line())
    if result.int8_path is not None:
        print(f"int8 -> {result.int8_path} ({result.int8_path.stat().st_size / 2**20:.1f} MiB) "
              "vs fp32 eager PyTorch:")
        for check in result.int8_checks:
            print("  " + check.line())
    files = [p for p in (result.path, result.int8_path) if p is not None]
    print(f"results in {result.path.parent} ({len(files)} file{'s' if len(files) > 1 else ''}):")
    print("\n".join(f"  {p.name}" for p in files))
    return 0

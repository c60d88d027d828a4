"""List the PE variants, or describe one (architecture, parameters, native size)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a variant name; omit to list all")
    parser.add_argument("--filter", default="", help="only variants whose name contains this")


def run(args: argparse.Namespace) -> int:
    import torch

    from pe_dense import create_backbone, get_variant, list_models

    names = [args.model] if args.model else list_models(args.filter)
    if args.model:
        get_variant(args.model)  # clear error for unknown names
    print(f"{'model':24s} {'params':>9s} {'patch':>5s} {'width':>5s} {'blocks':>6s} "
          f"{'heads':>5s} {'size':>5s} {'cls':>4s} {'output':>8s}")
    for name in names:
        cfg = get_variant(name)
        with torch.device("meta"):
            params = sum(p.numel() for p in create_backbone(name).parameters())
        out = cfg.output_dim or "tokens"
        print(f"{name:24s} {params / 1e6:8.1f}M {cfg.patch_size:5d} {cfg.width:5d} "
              f"{cfg.layers:6d} {cfg.heads:5d} {cfg.image_size:5d} "
              f"{'yes' if cfg.use_cls_token else 'no':>4s} {out!s:>8s}")
    return 0

"""List the PE variants, or describe one (architecture, parameters, native size).

Parameter counts come from the variant table (``pe_dense.backbone.variants.param_count``, equal
to building the model), so this command imports no torch and builds nothing.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a variant name; omit to list all")
    parser.add_argument("--filter", default="", help="only variants whose name contains this")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from pe_dense.backbone.variants import get_variant, list_models, param_count

    names = [args.model] if args.model else list_models(args.filter)
    if args.model:
        get_variant(args.model)  # clear error for unknown names
    if not names:
        raise ValueError(f"no variant name contains {args.filter!r}: run pe-dense info to list "
                         "them all")
    print(f"{'model':24s} {'params':>9s} {'patch':>5s} {'width':>5s} {'blocks':>6s} "
          f"{'heads':>5s} {'size':>5s} {'cls':>4s} {'output':>8s}")
    for name in names:
        cfg = get_variant(name)
        out = cfg.output_dim or "tokens"
        print(f"{name:24s} {param_count(cfg) / 1e6:8.1f}M {cfg.patch_size:5d} {cfg.width:5d} "
              f"{cfg.layers:6d} {cfg.heads:5d} {cfg.image_size:5d} "
              f"{'yes' if cfg.use_cls_token else 'no':>4s} {out!s:>8s}")
    if args.model:
        print("\n".join(f"  {key} = {value}" for key, value in asdict(get_variant(args.model))
                        .items()))
    return 0

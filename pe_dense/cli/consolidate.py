"""Turn a sharded (FSDP) training checkpoint folder into one plain checkpoint file.

    pe-dense consolidate work_dirs/RUN/iter_1000.pth work_dirs/RUN/iter_1000_full.pth

The output holds ``state_dict`` (the whole model, CPU tensors) and ``meta``: `pe-dense test`,
`pe-dense predict` and `load_from` read it; `pe-dense test` also reads the folder itself
(consolidating on the fly). ``--prefix`` keeps one part, e.g. a detector's backbone for
`create_backbone(VARIANT, weights=OUT)`:

    pe-dense consolidate work_dirs/RUN/iter_1000.pth backbone.pth --prefix pyramid.backbone.

Needs no GPU and no torchrun.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a sharded checkpoint folder (model/, optim/, meta.pth)")
    parser.add_argument("output", help="the plain checkpoint file to write (.pth)")
    parser.add_argument("--prefix", default=None,
                        help="keep only the keys under this prefix, without it (e.g. a "
                        "detector's backbone, for create_backbone); the printed key list shows it")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pe_dense.backbone.weights import save_checkpoint
    from pe_dense.engine.fsdp import consolidate

    checkpoint = consolidate(args.checkpoint)
    if args.prefix:
        state = {k[len(args.prefix):]: v for k, v in checkpoint["state_dict"].items()
                 if k.startswith(args.prefix)}
        if not state:
            prefixes = sorted({k.split(".")[0] + "." for k in checkpoint["state_dict"]})
            raise ValueError(f"no key starts with {args.prefix!r}; top-level prefixes: "
                             f"{', '.join(prefixes)}")
        checkpoint = {"state_dict": state, "meta": checkpoint["meta"]}
    out = Path(args.output)
    save_checkpoint(checkpoint, out)
    count = sum(t.numel() for t in checkpoint["state_dict"].values())
    print(f"{len(checkpoint['state_dict'])} tensors ({count / 1e6:.1f}M values) written to {out}")
    return 0

"""Write a seeded random PE backbone as a weights file (pe_dense's state-dict layout).

Two detectors trained "from the same initialisation" (e.g. pe_dense's Mask R-CNN and the
detectron2 integration in the side-by-side check of docs/benchmarks.md) both load this file:
``model.backbone.weights=FILE`` in a pe_dense config, ``train.init_checkpoint=FILE`` in a
detectron2 one. Usage::

    python tools/random_backbone.py PE-Spatial-T16-512 OUT.pt --image-size 256 --seed 0
"""

from __future__ import annotations

import argparse
import sys

import torch

from pe_dense.backbone.factory import create_backbone
from pe_dense.utils.io import atomic_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="variant, e.g. PE-Spatial-T16-512 (pe-dense info lists them)")
    parser.add_argument("out", help="output .pt file")
    parser.add_argument("--image-size", type=int, default=None,
                        help="input size (sets the position-embedding grid); default the variant's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    overrides = {} if args.image_size is None else {"image_size": args.image_size}
    model = create_backbone(args.name, **overrides)
    with atomic_path(args.out) as tmp:
        torch.save(model.state_dict(), tmp)
    print(f"{args.name} (seed {args.seed}, {sum(p.numel() for p in model.parameters()):,} "
          f"parameters) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

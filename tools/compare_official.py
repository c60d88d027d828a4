"""Check PEViT against the official implementation (facebookresearch/perception_models).

Needs a checkout of that repository (not part of pe_dense) and ``einops``/``timm`` installed:

    python tools/compare_official.py --repo /path/to/perception_models \
        --models PE-Spatial-T16-512,PE-Core-T16-384 --sizes native,384x640

Both models get the same random weights (the official state dict is loaded into ours strictly);
the script prints the max absolute difference of the tokens (every layer asked for) and, for
Core, of the pooled embedding, and exits non-zero above ``--tol``.
"""

from __future__ import annotations

import argparse
import sys

import torch

import pe_dense


def compare(repo: str, name: str, size: tuple[int, int], layers: list[int],
            depth: int | None = None) -> float:
    sys.path.insert(0, repo)
    from core.vision_encoder.pe import VisionTransformer  # noqa: PLC0415 (external checkout)

    torch.manual_seed(0)
    kw = {"layers": depth} if depth else {}
    official = VisionTransformer.from_config(name, **kw).eval()
    ours = pe_dense.create_backbone(name, weights=official.state_dict(), **kw).eval()
    x = torch.randn(1, 3, *size)
    worst = 0.0
    with torch.no_grad():
        for layer in layers:
            a = official.forward_features(x, layer_idx=layer)
            b = ours.forward_features(x, layer=layer)
            worst = max(worst, (a - b).abs().max().item() / a.abs().max().item())
        if ours.pool_type == "attn":
            a, b = official(x), ours(x)
            worst = max(worst, (a - b).abs().max().item() / a.abs().max().item())
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True, help="perception_models checkout")
    parser.add_argument("--models", default="PE-Spatial-T16-512,PE-Core-T16-384")
    parser.add_argument("--sizes", default="native,224x320")
    parser.add_argument("--layers", default="-1,1")
    parser.add_argument("--depth", type=int, help="build only this many blocks (G on a laptop)")
    parser.add_argument("--tol", type=float, default=1e-5, help="relative to max |output|")
    args = parser.parse_args(argv)
    failed = False
    for name in args.models.split(","):
        native = pe_dense.get_variant(name).image_size
        for spec in args.sizes.split(","):
            size = (native, native) if spec == "native" else tuple(map(int, spec.split("x")))
            err = compare(args.repo, name, size, [int(v) for v in args.layers.split(",")],
                          args.depth)
            failed |= err > args.tol
            print(f"{name:22s} {size[0]}x{size[1]:<5d} max rel diff {err:.2e}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())

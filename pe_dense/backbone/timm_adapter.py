"""Every timm ViT family behind the backbone contract: ``create_backbone("timm/<model name>")``.

The one module that imports timm. It wraps any timm model with ``forward_intermediates`` (the
``VisionTransformer`` family: DINOv2 with and without registers, AIMv2, DeiT, ...; ``Eva``:
DINOv3 and EVA-02 with RoPE, timm's own ``vit_pe_*``; ``NaFlexVit``: RADIO v3/v4 and NaFlex
SigLIP), built with random weights offline (``pretrained=False``; ``dynamic_img_size=True``
where the family takes it, so any size that is a multiple of the patch works), and takes the
model's own normalisation from its ``pretrained_cfg`` (ImageNet statistics for the DINO family,
0.5 / 0.5 for PE and SigLIP, CLIP's for AIMv2 and EVA-02).

Weights: a local file (``.pt``/``.pth``/``.bin``/``.safetensors``, timm's own key names, also
with a ``model.`` prefix or inside a ``state_dict`` / ``model`` wrapper), loaded with the same
strict report as PE checkpoints; or ``weights="hf-hub:<org>/<repo>"``: that repository's
``model.safetensors`` (timm's hub layout), fetched by :mod:`pe_dense.utils.hub`, which fails at
once offline, saying how to pass a local file.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from pe_dense.backbone.contract import Backbone

__all__ = ["TimmBackbone", "PREFIX", "timm_names", "create_timm_model", "eva_pos_resampling",
           "lamb_optimizer", "load_timm_weights"]

PREFIX = "timm/"
_EMBED_PREFIXES = ("patch_embed", "embeds", "cls_token", "reg_token", "pos_embed", "norm_pre",
                   "rope", "pos_drop", "patch_drop")


def timm_names() -> list[str]:
    """Every model name timm knows (``timm.list_models()``)."""
    return list(_timm().list_models())


def _timm() -> Any:
    try:
        import timm
    except ImportError as exc:
        raise ImportError("timm models need timm: pip install 'timm>=1.0.31' (extra 'train')") \
            from exc
    return timm


def create_timm_model(name: str, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=False, **kwargs)``: a bare timm model (random
    weights), e.g. the benchmark's ``vit_pe_*`` twin of a PE variant."""
    return _timm().create_model(name, pretrained=False, **kwargs)


@contextlib.contextmanager
def eva_pos_resampling(**kwargs: Any) -> Iterator[None]:
    """Make timm's Eva family resample absolute position embeddings with ``kwargs`` (e.g.
    ``interpolation="bilinear", antialias=False``, as the official PE code does) while the
    context is active; timm's default is bicubic with antialias."""
    import timm.models.eva as eva

    original = eva.resample_abs_pos_embed
    eva.resample_abs_pos_embed = functools.partial(original, **kwargs)
    try:
        yield
    finally:
        eva.resample_abs_pos_embed = original


def lamb_optimizer(params: Any, **kwargs: Any) -> torch.optim.Optimizer:
    """timm's LAMB optimizer (``betas``, ``weight_decay``, ``max_grad_norm``, ...)."""
    from timm.optim import Lamb

    _timm()
    return Lamb(params, **kwargs)


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, timm_names(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(PREFIX + c for c in close)}?" if close else \
        "; timm.list_models('*dinov2*') lists a family"
    return ValueError(f"unknown timm model {name!r}{hint}")


def _create(name: str, overrides: dict[str, Any]) -> nn.Module:
    timm = _timm()
    base = name.split(".")[0]
    if not timm.is_model(base):
        raise _unknown(name)
    kwargs = dict(overrides)
    try:
        return timm.create_model(base, pretrained=False, dynamic_img_size=True, **kwargs)
    except TypeError as exc:
        if "dynamic_img_size" not in str(exc):
            raise ValueError(f"timm cannot build {name} with {kwargs}: {exc}") from exc
    try:  # NaFlex models take any size natively and have no dynamic_img_size
        return timm.create_model(base, pretrained=False, **kwargs)
    except TypeError as exc:
        raise ValueError(f"timm cannot build {name} with {kwargs}: {exc}") from exc


def _patch_size(model: nn.Module) -> int:
    for owner in ("patch_embed", "embeds"):
        size = getattr(getattr(model, owner, None), "patch_size", None)
        if size is not None:
            return int(size[0] if isinstance(size, (tuple, list)) else size)
    raise ValueError(f"{type(model).__name__} has no patch_embed.patch_size / "
                     "embeds.patch_size: not a ViT the timm adapter can read")


class TimmBackbone(Backbone):
    """A timm model under the backbone contract. ``name``: a timm model name (without the
    ``timm/`` prefix); ``overrides``: ``timm.create_model`` keyword arguments
    (e.g. ``depth=2, embed_dim=64, num_heads=2`` for a tiny test model, ``drop_path_rate``).
    ``window_size`` / ``global_blocks`` (ViTDet windowed attention) are refused by name."""

    supports_windowed = False

    def __init__(self, name: str, **overrides: Any) -> None:
        super().__init__()
        windowed = {k: overrides.pop(k) for k in ("window_size", "global_blocks")
                    if k in overrides}
        if any(windowed.values()):
            raise ValueError(f"{PREFIX}{name} cannot run ViTDet windowed attention "
                             f"({', '.join(windowed)}): only PE backbones can; use global "
                             "attention (drop the window settings) or a PE model")
        model = _create(name, overrides)
        missing = [m for m in ("forward_intermediates", "blocks") if not hasattr(model, m)]
        if missing:
            raise ValueError(f"{PREFIX}{name} ({type(model).__name__}) has no "
                             f"{' and no '.join(missing)}: the adapter needs timm's "
                             "forward_intermediates(x, indices, output_fmt=...) and a blocks "
                             "list; pick a ViT family (vit_*, eva*, naflexvit_*, aimv2_*)")
        self.model, self.name = model, PREFIX + name
        self.patch_size = _patch_size(model)
        self.embed_dim = int(getattr(model, "embed_dim", getattr(model, "num_features", 0)))
        self.num_layers = len(model.blocks)
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 0))
        cfg = getattr(model, "pretrained_cfg", None) or {}
        self.input_mean = tuple(float(v) for v in cfg.get("mean", (0.5, 0.5, 0.5)))
        self.input_std = tuple(float(v) for v in cfg.get("std", (0.5, 0.5, 0.5)))

    def take_indices(self, indices: int | Sequence[int]) -> list[int]:
        n = self.num_layers
        if isinstance(indices, int):
            if not 1 <= indices <= n:
                raise ValueError(f"indices={indices}: ask for 1..{n} last blocks of "
                                 f"{self.name} (an int n means the last n), or a list")
            return list(range(n - indices, n))
        taken = []
        for i in indices:
            if not -n <= int(i) < n:
                raise ValueError(f"block {i} is out of range for {self.name} ({n} blocks): "
                                 f"use 0..{n - 1} or -{n}..-1")
            taken.append(int(i) % n)
        if not taken:
            raise ValueError("indices is empty: pass at least one block index, e.g. [-1]")
        return taken

    def _run(self, x: torch.Tensor, wanted: list[int], norm: bool, output_fmt: str,
             prefix: bool) -> dict[int, Any]:
        order = sorted(set(wanted))
        out = self.model.forward_intermediates(
            x, indices=order, norm=norm, output_fmt=output_fmt, intermediates_only=True,
            stop_early=True, return_prefix_tokens=prefix)
        return dict(zip(order, out, strict=True))

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] = 1,
                              norm: bool = False, output_fmt: str = "NCHW"
                              ) -> list[torch.Tensor]:
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt={output_fmt!r}: use NCHW or NLC")
        self._check_input(x)
        wanted = self.take_indices(indices)
        maps = self._run(x, wanted, norm, output_fmt, prefix=False)
        return [maps[i] for i in wanted]

    def forward_features(self, x: torch.Tensor, layer: int = -1, norm: bool = False,
                         strip_cls: bool = False) -> torch.Tensor:
        self._check_input(x)
        (i,) = self.take_indices([layer])
        spatial, prefix = self._run(x, [i], norm, "NLC", prefix=True)[i]
        if strip_cls or prefix is None or not prefix.shape[1]:
            return spatial
        return torch.cat([prefix, spatial], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The timm model's own ``forward`` (its pooled embedding or logits)."""
        return self.model(x)

    def layer_id(self, name: str) -> int:
        inner = name.removeprefix("model.")
        if inner.startswith(_EMBED_PREFIXES):
            return 0
        if inner.startswith("blocks."):
            return int(inner.split(".")[1]) + 1
        return self.num_layers + 1

    def blocks(self) -> list[nn.Module]:
        return list(self.model.blocks)

    def truncate(self, layer: int) -> TimmBackbone:
        (stop,) = self.take_indices([layer])
        self.model.blocks = self.model.blocks[: stop + 1]
        self.num_layers = stop + 1
        return self

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """timm's own key layout (``create_backbone("timm/...", weights=...)`` reads it)."""
        return self.model.state_dict()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.model.set_grad_checkpointing(enable)

    def no_weight_decay(self) -> set[str]:
        own = getattr(self.model, "no_weight_decay", None)
        return {f"model.{n}" for n in (own() if callable(own) else ())}

    def _check_input(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"input {h}x{w} is not a multiple of {self.name}'s patch size "
                             f"{p}; nearest valid {max(p, round(h / p) * p)}x"
                             f"{max(p, round(w / p) * p)}")


def load_timm_weights(backbone: TimmBackbone, source: str | os.PathLike | dict,
                      strict: bool = True) -> None:
    """Load a timm state dict (a file, ``hf-hub:<org>/<repo>`` or a dict; ``model.`` prefixes
    and ``state_dict`` / ``model`` wrappers accepted) into ``backbone.model``, with the
    strict-load report."""
    from pe_dense.backbone.weights import load_state_dict_checked, read_checkpoint

    if isinstance(source, str) and source.startswith("hf-hub:"):
        from pe_dense.utils.hub import download_file, parse_hf_spec

        repo, revision = parse_hf_spec(source[len("hf-hub:"):])
        source = download_file(repo, "model.safetensors", revision)
    obj = read_checkpoint(source) if not isinstance(source, dict) else source
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict) and \
                not any(isinstance(v, torch.Tensor) for v in obj.values()):
            obj = obj[key]
    sd = {k.removeprefix("module.").removeprefix("model."): v for k, v in obj.items()
          if isinstance(v, torch.Tensor)}
    load_state_dict_checked(backbone.model, sd, source_format="timm", strict=strict)

"""The strict-load report: what a checkpoint looks like against the model it was given to, the
exact fix, and the mismatching keys grouped, summary first.

:func:`pe_dense.backbone.weights.load_state_dict_checked` fills a :class:`LoadReport`; its
``summary()`` (the exception message) leads with a side-by-side description of the checkpoint's
and the model's PE tower (variant name, width, depth, patch, position grid, cls token, head),
the fix for the kind of mismatch (another variant, ``image_size``, ``patch_size``, a missing or
extra head, a text tower, a whole task-model checkpoint), then at most ``limit`` grouped key
lines; ``details()`` lists every key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from pe_dense.backbone.variants import VARIANTS, PEConfig

__all__ = ["LoadReport", "TowerShape", "guess_variants", "variants_at_any_size", "tower_shape",
           "config_shape", "tower_fix", "describe_towers", "tower_prefix", "layout_hints",
           "group_keys"]

_BLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.")
_NUMBER = re.compile(r"\.(\d+)\.")
_TEXT_TOWER = ("token_embedding", "text_projection", "logit_scale", "ln_final", "text.",
               "text_model.", "transformer.text", "text_transformer.")


@dataclass(frozen=True)
class TowerShape:
    """The architecture a PE vision tower's tensors reveal (None: the tensor is absent)."""

    width: int
    layers: int
    patch: int
    grid: int | None
    cls: bool
    layerscale: bool
    pool: bool
    proj: int | None

    def text(self) -> str:
        grid = f"grid {self.grid}x{self.grid}" if self.grid else "no position embedding"
        head = ("attention pool + proj " + str(self.proj) if self.pool and self.proj
                else "attention pool" if self.pool else f"proj {self.proj}" if self.proj
                else "no head")
        return (f"width {self.width}, {self.layers} blocks, patch {self.patch}, {grid}, "
                f"{'cls token' if self.cls else 'no cls token'}, "
                f"{'layerscale, ' if self.layerscale else ''}{head}")


def tower_shape(sd: Mapping[str, Any]) -> TowerShape | None:
    """The :class:`TowerShape` of an official-layout state dict (None without ``conv1``)."""
    conv = sd.get("conv1.weight")
    if conv is None or len(conv.shape) != 4:
        return None
    cls = "class_embedding" in sd
    pos = sd.get("positional_embedding")
    rows = None if pos is None else int(pos.shape[-2]) - int(cls)
    grid = None if rows is None else round(max(rows, 0) ** 0.5)
    proj = sd.get("proj")
    return TowerShape(
        width=int(conv.shape[0]), layers=len({m.group(1) for k in sd if (m := _BLOCK.match(k))}),
        patch=int(conv.shape[-1]), grid=grid, cls=cls,
        layerscale=any(".ls_1." in k for k in sd), pool="attn_pool.probe" in sd,
        proj=None if proj is None else int(proj.shape[-1]))


def config_shape(cfg: PEConfig) -> TowerShape:
    """The :class:`TowerShape` that ``PEViT(**asdict(cfg))`` has."""
    return TowerShape(
        width=cfg.width, layers=cfg.layers, patch=cfg.patch_size,
        grid=cfg.image_size // cfg.patch_size if cfg.use_abs_posemb else None,
        cls=cfg.use_cls_token, layerscale=cfg.ls_init_value is not None,
        pool=cfg.pool_type == "attn", proj=cfg.output_dim)


def _variants_of(shape: TowerShape | None) -> list[str]:
    if shape is None:
        return []
    return [name for name, cfg in VARIANTS.items() if config_shape(cfg) == shape
            or (shape.grid is None and config_shape(cfg) == _with(shape, grid=cfg.image_size
                                                                  // cfg.patch_size))]


def _with(shape: TowerShape, **changes: Any) -> TowerShape:
    return TowerShape(**{**{f.name: getattr(shape, f.name) for f in fields(shape)}, **changes})


def variants_at_any_size(shape: TowerShape | None) -> list[str]:
    """Names of variants that have ``shape``'s architecture at some image size (the position
    grid may differ from the variant's own: a detector's PE-Test at 256 px is still PE-Test)."""
    if shape is None:
        return []
    return [name for name, cfg in VARIANTS.items()
            if _with(config_shape(cfg), grid=shape.grid) == shape]


def _at_size(names: list[str], shape: TowerShape) -> tuple[list[str], int | None]:
    """``names`` when the grid fits; else the variants at another size and that size."""
    if names or shape.grid is None:
        return names, None
    return variants_at_any_size(shape), shape.grid * shape.patch


def guess_variants(sd: Mapping[str, Any]) -> list[str]:
    """Names of variants whose architecture matches an official-layout state dict."""
    return _variants_of(tower_shape(sd))


# ----------------------------------------------------------------------------- the fix

def _name(names: list[str]) -> str:
    return " or ".join(names) if names else "no known variant"


def _arch_fix(ckpt: TowerShape, model: TowerShape, names: list[str]) -> str:
    """Advice when width, depth, cls token, layerscale or head differ."""
    head_only = {"pool", "proj"} >= _diff(ckpt, model)
    if head_only and not ckpt.pool and not ckpt.proj:
        return ("the checkpoint has no attention pool / proj head (a features-only tower): "
                + (f"build {names[0]} (--model {names[0]})" if names else
                   "build the model with pool_type='none', output_dim=None")
                + ", or load with strict=False to keep a random head")
    if head_only:
        return ("the checkpoint has an attention pool / proj head the model lacks: "
                + (f"build {names[0]} (--model {names[0]})" if names else
                   "build the model with pool_type='attn' and output_dim=" + str(ckpt.proj))
                + ", or load with strict=False to ignore it")
    if names:
        return (f"build the model as {names[0]}: --model {names[0]} on the command line, "
                f"create_backbone(\"{names[0]}\", weights=...) in Python")
    sized, size = _at_size(names, ckpt)
    if sized:
        return (f"build the model as {sized[0]} at image_size={size}: --model {sized[0]} "
                f"--resolution {size} on the command line, model.backbone=dict(name="
                f"\"{sized[0]}\", image_size={size}) in a config")
    changes = {"width": ckpt.width, "layers": ckpt.layers, "use_cls_token": ckpt.cls}
    return ("no known variant has the checkpoint's sizes: build PEViT with "
            + ", ".join(f"{k}={v}" for k, v in changes.items()) + " (and matching heads/mlp)")


def _diff(a: TowerShape, b: TowerShape) -> set[str]:
    return {f.name for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)}


def tower_fix(ckpt: TowerShape, model: TowerShape, names: list[str]) -> list[str]:
    """The fix for a checkpoint tower ``ckpt`` given to a model tower ``model``."""
    diff = _diff(ckpt, model)
    if diff & {"width", "layers", "layerscale", "pool", "proj"}:
        return [_arch_fix(ckpt, model, names)]
    fixes = []
    if "cls" in diff and model.cls:
        fixes.append("the checkpoint has no class_embedding (as the official detection "
                     "checkpoints): load with detection=True (keeps the model's unused one) or "
                     "build the model with use_cls_token=False")
    elif "cls" in diff:
        fixes.append("the checkpoint has a class_embedding the model lacks: build the model "
                     "with use_cls_token=True" + (f" (as {names[0]})" if names else ""))
    if "patch" in diff:
        fixes.append(f"build the model with patch_size={ckpt.patch}, or resample the kernel as "
                     f"the official detection code does: pe-dense convert SRC DST --to "
                     f"detectron2 --patch-size {model.patch}")
    if "patch" in diff and model.grid and ckpt.grid:
        diff.discard("grid")  # the grid fits again with the checkpoint's patch size ...
        if model.grid * model.patch // ckpt.patch != ckpt.grid:
            diff.add("grid")  # ... unless the image size differs as well
    if "grid" in diff and ckpt.grid:
        size = ckpt.grid * ckpt.patch
        fixes.append(f"build the model with image_size={size} (or pretrain_image_size={size}); "
                     "inputs of any size still work")
    return fixes


def describe_towers(ckpt_sd: Mapping[str, Any], model_sd: Mapping[str, Any], label: str = ""
                    ) -> tuple[list[str], list[str]]:
    """(side-by-side lines, fixes) for one PE tower: the checkpoint's tensors against the
    model's (both official layout, relative to the tower). ``label``: e.g. "backbone"."""
    model = tower_shape(model_sd)
    if model is None:
        return [], []
    ckpt = tower_shape(ckpt_sd)
    own = f"{label} " if label else ""
    model_names = _variants_of(model)
    model_sized, model_size = _at_size(model_names, model)
    built = (f"{_name(model_names)} - " if model_names else
             f"{_name(model_sized)} at {model_size} px - " if model_sized else "")
    model_line = f"model{' ' + label if label else ''}: {built}{model.text()}"
    if ckpt is None:
        return [f"checkpoint {own}has no PE tower (no conv1.weight)", model_line], []
    names = _variants_of(ckpt)
    sized, size = _at_size(names, ckpt)
    looks = (f"looks like {_name(names)}" if names else
             f"looks like {_name(sized)} at {size} px" if sized else "matches no known variant")
    lines = [f"checkpoint{' ' + label if label else ''}: {looks} - {ckpt.text()}", model_line]
    diff = _diff(ckpt, model)
    if diff:
        lines.append("they differ in: " + ", ".join(f.name for f in fields(ckpt)
                                                     if f.name in diff))
    return lines, tower_fix(ckpt, model, names)


def tower_prefix(keys: Sequence[str]) -> str | None:
    """The prefix of a PE tower inside a whole-model checkpoint (``backbone.`` ...), if any."""
    found = sorted(k[:-len("conv1.weight")] for k in keys if k.endswith(".conv1.weight"))
    return found[0] if found else None


def layout_hints(unexpected: Sequence[str], missing: Sequence[str]) -> list[str]:
    """Fixes for checkpoints of another kind: a whole task model (backbone under a prefix,
    plus neck/heads) given as a backbone, or a CLIP checkpoint that still holds its text tower."""
    hints = []
    prefix = tower_prefix(unexpected)
    if prefix and "conv1.weight" in missing:
        others = sum(not k.startswith(prefix) for k in unexpected)
        hints.append(f"the checkpoint is a whole task model (a detector or other head) with its "
                     f"PE backbone under '{prefix}' and {others} other keys: load it with its "
                     f"config (pe-dense predict/test CONFIG CHECKPOINT, or "
                     f"load_detector_checkpoint), or pass only the backbone: "
                     f"{{k[{len(prefix)}:]: v for k, v in sd.items() if k.startswith('{prefix}')}}")
    text = [k for k in unexpected if k.startswith(_TEXT_TOWER)]
    if text:
        hints.append(f"the checkpoint also holds a text tower ({len(text)} keys such as "
                     f"{text[0]}): load only its vision tower (the keys under 'visual.' of a "
                     f"CLIP checkpoint, or pe-dense convert SRC DST --to official)")
    return hints


# ----------------------------------------------------------------------------- key lines

def _fmt(shape: tuple) -> str:
    return "x".join(str(s) for s in shape) or "scalar"


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> "0..2,5"."""
    parts, start = [], None
    for i, value in enumerate(indices):
        start = value if start is None else start
        if i + 1 == len(indices) or indices[i + 1] != value + 1:
            parts.append(str(value) if value == start else f"{start},{value}"
                         if value == start + 1 else f"{start}..{value}")
            start = None
    return ",".join(parts)


def group_keys(keys: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Keys that differ only in a block number merged: ``prefix.{0..11}.leaf`` (or ``.*`` for
    more than three leaves); more than two un-numbered keys of one module as ``module.*``.
    Returns (text, the keys it stands for), in the order of each group's first key."""
    by_leaf: dict[tuple[str, str], list[str]] = {}
    by_module: dict[str, list[str]] = {}
    for key in keys:
        m = _NUMBER.search(key)
        if m is None:
            by_module.setdefault(key.split(".")[0], []).append(key)
        else:
            by_leaf.setdefault((key[:m.start()], key[m.end():]), []).append(key)
    merged: dict[tuple[str, tuple[int, ...]], list[tuple[str, list[str]]]] = {}
    for (prefix, leaf), members in by_leaf.items():
        idx = tuple(sorted({int(_NUMBER.search(k).group(1)) for k in members}))
        merged.setdefault((prefix, idx), []).append((leaf, members))
    out = [(f"{head}.*", members) if len(members) > 2 else (key, [key])
           for head, members in by_module.items()
           for key in (members[:1] if len(members) > 2 else members)]
    for (prefix, idx), leaves in merged.items():
        block = str(idx[0]) if len(idx) == 1 else "{" + _ranges(list(idx)) + "}"
        names = [leaf for leaf, _ in leaves]
        leaf = names[0] if len(names) == 1 else (
            "{" + ",".join(names) + "}" if len(names) <= 3 else "*")
        out.append((f"{prefix}.{block}.{leaf}", [k for _, members in leaves for k in members]))
    order = {key: i for i, key in enumerate(keys)}
    return sorted(out, key=lambda group: min(order[k] for k in group[1]))


def _count(n: int) -> str:
    return f" ({n} keys)" if n > 1 else ""


@dataclass
class LoadReport:
    """What a checkpoint had that the model lacked, and the reverse.

    ``summary()`` (also ``str(report)``) leads with the towers side by side and the fix, then at
    most ``limit`` grouped key lines and a count of the rest; ``details()`` lists every key.
    """

    source_format: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    towers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def num_keys(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)

    def key_lines(self) -> list[tuple[str, int]]:
        """(line, number of keys) per group: shape mismatches (keys with the same shapes merged
        across blocks), then missing, then unexpected."""
        by_shapes: dict[tuple[tuple, tuple], list[str]] = {}
        for key, ckpt, model in self.mismatched:
            by_shapes.setdefault((ckpt, model), []).append(key)
        order = {key: i for i, (key, _, _) in enumerate(self.mismatched)}
        groups = [(min(order[k] for k in members), text, c, m, len(members))
                  for (c, m), keys in by_shapes.items() for text, members in group_keys(keys)]
        lines = [(f"shape mismatch {k}: checkpoint {_fmt(c)} vs model {_fmt(m)}{_count(n)}", n)
                 for _, k, c, m, n in sorted(groups, key=lambda g: g[0])]
        lines += [(f"missing in checkpoint: {k}{_count(len(m))}", len(m))
                  for k, m in group_keys(self.missing)]
        lines += [(f"unexpected in checkpoint: {k}{_count(len(m))}", len(m))
                  for k, m in group_keys(self.unexpected)]
        return lines

    def summary(self, limit: int = 10) -> str:
        n = self.num_keys
        differ = "1 key differs" if n == 1 else f"{n} keys differ"
        lines = [f"checkpoint format: {self.source_format}; {differ}"]
        lines += self.towers + [f"fix: {h}" for h in self.hints]
        groups = self.key_lines()
        lines += [text for text, _ in groups[:limit]]
        rest = sum(n for _, n in groups[limit:])
        if rest:
            lines.append(f"... and {rest} more; full list with --verbose (or the exception's "
                         ".details)")
        return "\n".join(lines)

    def details(self) -> str:
        """Every missing, unexpected and mis-shaped key, one per line."""
        lines = [f"shape mismatch {k}: checkpoint {_fmt(c)} vs model {_fmt(m)}"
                 for k, c, m in self.mismatched]
        lines += [f"missing in checkpoint: {k}" for k in self.missing]
        lines += [f"unexpected in checkpoint: {k}" for k in self.unexpected]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


"""The one checkpoint reader: what a file is, its contents read safely, and the next step.

Every command and library path that opens a checkpoint goes through here: the engine (``pe-dense
train/test``, the Predictor, ``--resume``), backbone weights (``--weights``,
``model.backbone.weights``), distillation, the open-vocabulary bridge and text cache, and FSDP
shard folders. :func:`inspect_checkpoint` recognises a path as one of :data:`KINDS`:

- not a checkpoint: missing, a folder, an empty file, an image, an HTML page, a text file ...;
- ``truncated``: a PyTorch zip archive without its end record, a safetensors file shorter than
  its header says, a pickle that ends early;
- ``training``: a ``pe-dense train`` (mmengine) checkpoint, with the model it holds (type,
  backbone variant and image size, from the saved config and the tensors) and its iteration;
- ``sharded``: an FSDP checkpoint folder (``model/.metadata``), consolidated on reading;
- ``backbone``: a PE vision tower (official, timm / Hugging Face / OpenCLIP layouts), with its
  variant and image size; ``clip``: vision and text towers; ``detectron2``: a detectron2 /
  official detection file; ``task``: a task model's bare state dict; ``pe_dense``: another
  pe_dense file (bridge, text cache: a ``format`` entry); ``other``: tensors or objects of
  something else.

Files are read without running their pickled code: ``torch.load(weights_only=True)``, and for
mmengine training checkpoints (which also pickle log buffers and numpy scalars) the same safe
loader with those objects replaced by inert stand-ins, so the weights and ``meta`` read as usual.
Only ``--resume`` (:func:`load_object` with ``trusted=True``) unpickles a run's own checkpoint
in full. :func:`advice` says what to do with a file for a command (``"test"``, ``"weights"``,
``"resume"``); :class:`CheckpointError` messages carry it.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pe_dense.backbone.layouts import CheckpointError, to_official
from pe_dense.backbone.load_report import tower_prefix, tower_shape, variants_at_any_size

__all__ = ["KINDS", "CheckpointError", "CheckpointInfo", "inspect_checkpoint", "load_object",
           "read_model_state_dict", "advice", "is_sharded_checkpoint", "consolidate_sharded",
           "backbone_of_training_checkpoint", "newest_checkpoint", "check_weights_file",
           "state_dict_of"]

log = logging.getLogger(__name__)

KINDS = ("missing", "folder", "not-a-checkpoint", "truncated", "training", "sharded", "backbone",
         "clip", "detectron2", "task", "pe_dense", "other")
_MODEL_KINDS = ("training", "sharded", "task")  # whole task models
_MAGIC = [  # (prefix, what the file is)
    (b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive (unpack it first)"), (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x7fELF", "a program (ELF executable)"), (b"%PDF", "a PDF document"),
]


@dataclass
class CheckpointInfo:
    """What :func:`inspect_checkpoint` found. ``kind``: one of :data:`KINDS`; ``what``: a
    phrase for messages ("a pe-dense training checkpoint of a MaskRCNN with PE-Test at 256 px
    (iteration 30)"); ``obj``: the loaded object (None unless loadable); ``model_type``,
    ``backbone`` (variant name or None), ``image_size``, ``iteration``, ``config_file`` (the
    run's config copy next to a training checkpoint, if present), ``prefix`` (where the PE
    tower sits in a task model's keys)."""

    path: Path
    kind: str
    what: str
    obj: Any = None
    model_type: str | None = None
    backbone: str | None = None
    image_size: int | None = None
    iteration: int | None = None
    config_file: Path | None = None
    prefix: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def is_checkpoint(self) -> bool:
        return self.kind not in ("missing", "folder", "not-a-checkpoint", "truncated")


# ----------------------------------------------------------------------------- files

def is_sharded_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a sharded (FSDP) checkpoint folder (``model/.metadata`` inside)."""
    return (Path(path) / "model" / ".metadata").is_file()


def newest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The checkpoint a work dir's ``last_checkpoint`` file names (or its newest ``*.pth``)."""
    folder = Path(folder)
    last = folder / "last_checkpoint"
    if last.is_file():
        named = Path(last.read_text().strip())
        for candidate in (named, folder / named.name):
            if candidate.exists():
                return candidate
    found = sorted(folder.glob("*.pth"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _size(n: int) -> str:
    return f"{n} bytes" if n < 10_000 else f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


def _sniff(path: Path) -> tuple[str, str]:
    """(kind, phrase) from the first bytes: ``torch``, ``safetensors``, ``truncated`` or
    ``not-a-checkpoint``."""
    size = path.stat().st_size
    if size == 0:
        return "not-a-checkpoint", "an empty file (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            return "truncated", (f"a truncated PyTorch file ({_size(size)}: its zip archive "
                                 "has no end record, so the write or copy stopped early)")
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch", ""
        if any(n.endswith("archive_format") for n in names):
            return "not-a-checkpoint", "a torch.export program (.pt2), not weights"
        return "not-a-checkpoint", "a zip archive without PyTorch data (not a checkpoint)"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "torch", ""  # a pickle: PyTorch's legacy format
    header = int.from_bytes(head[:8], "little")
    if head[8:9] == b"{" and header < 100_000_000:
        if size < 8 + header:
            return "truncated", f"a truncated safetensors file ({_size(size)})"
        return "safetensors", ""
    if path.suffix == ".onnx":
        return "not-a-checkpoint", "an ONNX model (pe-dense export output), not PyTorch weights"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return "not-a-checkpoint", what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "not-a-checkpoint", "a WebP image"
    try:
        text = head.decode("utf-8").lstrip().lower()
    except UnicodeDecodeError:
        return "not-a-checkpoint", f"a file of unknown format ({_size(size)})"
    if text.startswith(("<!doctype html", "<html", "<?xml", "<")):
        return "not-a-checkpoint", "an HTML/XML page (a failed download?)"
    if text.startswith(("{", "[")):
        return "not-a-checkpoint", "a JSON file"
    return "not-a-checkpoint", "a text file"


class _Inert:
    """Stands in for pickled objects that are not tensors (mmengine log buffers, numpy values)
    when a checkpoint is read safely: built from anything, holds nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()


def load_object(path: str | os.PathLike, trusted: bool = False, command: str | None = None
                ) -> Any:
    """The object in a checkpoint file (``.pt``/``.pth``/``.bin``/``.safetensors``), read on the
    CPU without running pickled code: non-tensor objects mmengine pickles (log buffers, numpy
    scalars) become inert stand-ins. ``trusted=True`` (``--resume`` of the run's own files)
    unpickles in full. Raises ``FileNotFoundError`` or :class:`CheckpointError` saying what the
    file is instead (and, given ``command``, what to pass: see :func:`advice`)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(_missing_message(path))
    if path.is_dir():
        info = CheckpointInfo(path, "folder", "a folder" + _folder_hint(path))
        raise _error(info, command or "weights", None, " not a checkpoint file")
    kind, what = _sniff(path)
    if kind in ("not-a-checkpoint", "truncated"):
        raise _error(CheckpointInfo(path, kind, what), command or "weights", None,
                     "" if kind == "truncated" else " not a checkpoint")
    if kind == "safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise CheckpointError(f"{path} is a damaged safetensors file ({exc})") from exc
    try:
        if trusted:
            return torch.load(path, map_location="cpu", weights_only=False)
        return _load_weights_only(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # torch raises many types for damaged files
        if "weights only" in str(exc).lower():
            raise CheckpointError(
                f"{path} is a legacy-format PyTorch file with pickled Python objects besides "
                "tensors, which pe-dense does not unpickle; resave its weights with "
                "torch.save(state_dict, NEW.pt) where you trust it") from exc
        raise CheckpointError(
            f"{path} is a truncated or damaged PyTorch file ({_size(path.stat().st_size)}; "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from exc


def _load_weights_only(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the pickle names classes beyond tensors: stand them in
        if "weights only" not in str(exc).lower() or not zipfile.is_zipfile(path):
            raise
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    with torch.serialization.safe_globals([(_Inert, name) for name in names]):
        return torch.load(path, map_location="cpu", weights_only=True)


def _missing_message(path: Path) -> str:
    near = sorted(p.name for p in path.parent.glob("*.pt*")) if path.parent.is_dir() else []
    hint = f"; {path.parent} has {', '.join(near[:5])}" if near else ""
    return f"checkpoint {path} does not exist{hint}"


def _folder_hint(path: Path) -> str:
    newest = newest_checkpoint(path)
    if newest is not None:
        return f" (a work dir: its newest checkpoint is {newest})"
    weights = sorted(p.name for p in path.iterdir() if p.suffix in (".safetensors", ".bin",
                                                                     ".pt", ".pth"))
    if weights:
        return f" (pass the weights file inside: {path / weights[0]})"
    return ""


def consolidate_sharded(path: str | os.PathLike) -> dict[str, Any]:
    """A sharded (FSDP) checkpoint folder as ``{"state_dict", "meta"}`` (CPU tensors; no
    process group needed)."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    path = Path(path)
    if not is_sharded_checkpoint(path):
        raise FileNotFoundError(f"{path} is not a sharded checkpoint folder (no model/.metadata)")
    with tempfile.TemporaryDirectory(prefix="pe-consolidate-") as tmp:
        out = Path(tmp) / "model.pt"
        dcp_to_torch_save(path / "model", out)
        state_dict = torch.load(out, map_location="cpu", weights_only=True)
    meta_file = path / "meta.pth"
    meta = load_object(meta_file).get("meta", {}) if meta_file.is_file() else {}
    return {"state_dict": state_dict, "meta": meta if isinstance(meta, dict) else {}}


# ----------------------------------------------------------------------------- recognising

def _literal(node: ast.AST) -> Any:
    """A config expression of literals and ``dict(...)`` calls as Python values."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg is not None}
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)
                if k is not None}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    return ast.literal_eval(node)


def _model_cfg(cfg_text: Any) -> dict[str, Any]:
    """The ``model`` dict of a config saved as text in a training checkpoint's meta."""
    if not isinstance(cfg_text, str):
        return {}
    try:
        tree = ast.parse(cfg_text)
    except SyntaxError:
        return {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "model"):
            try:
                value = _literal(node.value)
            except (ValueError, TypeError, SyntaxError):
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def state_dict_of(obj: Any) -> dict[str, torch.Tensor] | None:
    """The tensors of a checkpoint object (its ``state_dict`` entry, or itself), ``module.``
    prefixes removed; None when it is not a dict of tensors."""
    sd = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(sd, Mapping) or not sd:
        return None
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        return None
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _tower(sd: Mapping[str, torch.Tensor], prefix: str) -> tuple[str | None, int | None]:
    """(variant name, image size) of the PE tower under ``prefix`` in ``sd``."""
    tower = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    shape = tower_shape(tower)
    if shape is None:
        return None, None
    names = variants_at_any_size(shape)
    size = shape.grid * shape.patch if shape.grid else None
    return (names[0] if names else None), size


def _describe_model(info: CheckpointInfo) -> str:
    parts = [f"a {info.model_type}" if info.model_type else "a task model"]
    if info.backbone:
        size = f" at {info.image_size} px" if info.image_size else ""
        parts.append(f"with {info.backbone}{size}")
    return " ".join(parts)


def _recognise_training(info: CheckpointInfo, obj: Mapping[str, Any],
                        sd: dict[str, torch.Tensor]) -> None:
    meta = obj.get("meta") if isinstance(obj.get("meta"), Mapping) else {}
    info.meta = dict(meta)
    model = _model_cfg(meta.get("cfg"))
    info.model_type = model.get("type") if isinstance(model.get("type"), str) else None
    info.iteration = meta.get("iter") if isinstance(meta.get("iter"), int) else None
    info.prefix = _prefix_of(sd)
    backbone = model.get("backbone") or model.get("student") or {}
    if isinstance(backbone, Mapping):
        name = backbone.get("name") or backbone.get("model")
        info.backbone = name if isinstance(name, str) else None
        size = backbone.get("image_size")
        info.image_size = size if isinstance(size, int) else None
    if info.prefix is not None and (info.backbone is None or info.image_size is None):
        name, size = _tower(sd, info.prefix)
        info.backbone = info.backbone or name
        info.image_size = info.image_size or size
    if info.backbone and info.image_size is None:
        from pe_dense.backbone.variants import VARIANTS

        if info.backbone in VARIANTS:
            info.image_size = VARIANTS[info.backbone].image_size
    experiment = meta.get("experiment_name")
    if isinstance(experiment, str):
        stem = re.sub(r"_[0-9a-f]{8}(_\d{8}_\d{6})?$", "", experiment)
        copy = info.path.parent / f"{stem}.py"
        info.config_file = copy if copy.is_file() else None


def _prefix_of(sd: Mapping[str, torch.Tensor]) -> str | None:
    if "conv1.weight" in sd:
        return ""
    return tower_prefix(list(sd))


def _recognise_tensors(info: CheckpointInfo, obj: Any, sd: dict[str, torch.Tensor]) -> None:
    """A bare state dict: a PE tower (which layout), CLIP, detectron2, a task model, other."""
    if any(k.startswith(("token_embedding", "text.", "text_model.")) for k in sd) and any(
            k.startswith(("visual.", "vision_model.")) for k in sd):
        info.kind, info.prefix = "clip", "visual."
        info.backbone, info.image_size = _tower(sd, "visual.")
        info.what = "a PE CLIP checkpoint (vision and text towers)"
        return
    prefix = _prefix_of(sd)
    try:
        official, fmt = to_official(obj)
    except (CheckpointError, ValueError, KeyError):
        official, fmt = {}, "official"
    if prefix not in (None, "") and fmt != "detectron2" and "conv1.weight" not in official:
        info.kind, info.prefix = "task", prefix
        info.backbone, info.image_size = _tower(sd, prefix)
        info.what = (f"a task model's state dict (its PE backbone under '{prefix}', "
                     f"{len(sd)} tensors)")
        return
    if "conv1.weight" not in official:
        info.kind = "other"
        info.what = f"a state dict of {len(sd)} tensors without a PE tower (e.g. {next(iter(sd))})"
        return
    info.backbone, info.image_size = _tower(official, "")
    info.kind = "detectron2" if fmt == "detectron2" else "backbone"
    layout = {"detectron2": "detectron2 / official detection", "timm": "timm / Hugging Face"}
    info.what = (f"a PE backbone state dict ({layout.get(fmt, 'official')} layout"
                 + (f") of {info.backbone}" if info.backbone else ", no known variant")
                 + (f" at {info.image_size} px" if info.image_size else "")
                 + ("" if info.backbone else ")"))


def inspect_checkpoint(path: str | os.PathLike, read: bool = True) -> CheckpointInfo:
    """Recognise ``path`` (see :data:`KINDS`); ``read=False`` looks at the first bytes only
    (cheap: for config checks). Never raises for a bad file: the kind says what it is."""
    path = Path(path).expanduser()
    if not path.exists():
        return CheckpointInfo(path, "missing", "a path that does not exist")
    if is_sharded_checkpoint(path):
        info = CheckpointInfo(path, "sharded", "a sharded (FSDP) checkpoint folder")
        if read:
            obj = consolidate_sharded(path)
            _recognise_training(info, obj, obj["state_dict"])
            info.obj = obj
            info.what = f"a sharded (FSDP) training checkpoint of {_describe_model(info)}"
        return info
    if path.is_dir():
        return CheckpointInfo(path, "folder", "a folder" + _folder_hint(path))
    kind, what = _sniff(path)
    if kind in ("not-a-checkpoint", "truncated"):
        return CheckpointInfo(path, kind, what)
    info = CheckpointInfo(path, "other", "a PyTorch file")
    if not read:
        return info
    try:
        obj = load_object(path)
    except CheckpointError as exc:
        return CheckpointInfo(path, "truncated", str(exc).removeprefix(f"{path} is "))
    info.obj = obj
    sd = state_dict_of(obj)
    if isinstance(obj, Mapping) and isinstance(obj.get("format"), str):
        info.kind, info.what = "pe_dense", f"a pe_dense {obj['format'].split('/')[0]} file"
    elif isinstance(obj, Mapping) and isinstance(obj.get("meta"), Mapping) and sd is not None \
            and "state_dict" in obj:
        info.kind = "training"
        _recognise_training(info, obj, sd)
        step = f" (iteration {info.iteration})" if info.iteration is not None else ""
        info.what = f"a pe-dense training checkpoint of {_describe_model(info)}{step}"
    elif sd is not None or isinstance(obj, Mapping):
        try:
            tensors = sd or _unwrapped(obj)
        except CheckpointError:
            tensors = None
        if tensors:
            _recognise_tensors(info, obj, tensors)
        else:
            keys = sorted(str(k) for k in obj)[:6] if isinstance(obj, Mapping) else []
            info.what = f"a PyTorch file without model weights (keys {keys})"
    else:
        info.what = f"a PyTorch file holding a {type(obj).__name__}, not model weights"
    return info


def _unwrapped(obj: Any) -> dict[str, torch.Tensor]:
    from pe_dense.backbone.layouts import unwrap_state_dict

    return unwrap_state_dict(obj)[0]


# ----------------------------------------------------------------------------- advice

def advice(info: CheckpointInfo, command: str, config: str | None = None,
           config_backbone: str | None = None) -> str:
    """What to do with ``info``'s file for ``command``: ``"test"`` (a whole-model checkpoint
    for ``pe-dense test``/predict), ``"weights"`` (backbone weights) or ``"resume"``.
    ``config_backbone``: the variant ``config`` builds (starting from the checkpoint's
    backbone is suggested only when it is the same)."""
    path, cfg = info.path, config or "CONFIG"
    if info.kind == "missing":
        return "check the path"
    if info.kind == "truncated":
        return ("copy it again (or re-download it); for a run of your own, use the run's "
                "previous checkpoint or --resume, which picks the newest complete one")
    if info.kind in ("not-a-checkpoint", "folder"):
        wanted = {"weights": "a PE backbone checkpoint (.pt/.pth/.safetensors, or "
                             "hf://facebook/NAME)",
                  "test": "a checkpoint written by pe-dense train (work_dirs/NAME/iter_N.pth)",
                  "bridge": "a bridge file (work_dir/bridge.pth of a configs/open_vocab/ run)"}
        return f"pass {wanted.get(command, wanted['test'])}"
    backbone = f"--cfg-options model.backbone.weights={path}"
    own_cfg = str(info.config_file) if info.config_file else "ITS_CONFIG"
    if info.kind in _MODEL_KINDS and command == "weights":
        return (f"evaluate it with pe-dense test {own_cfg} {path}; to start a training from its "
                f"backbone, pass {backbone} to pe-dense train")
    if info.kind in ("backbone", "detectron2", "clip") and command == "test":
        return (f"pe-dense test needs a checkpoint of the whole model written by pe-dense train; "
                f"to train from this backbone: pe-dense train {cfg} {backbone}")
    if info.kind in _MODEL_KINDS and command == "test":
        first = f"evaluate it with the config it was trained with: pe-dense test {own_cfg} {path}"
        if config_backbone and info.backbone and config_backbone != info.backbone:
            return f"{first} (its backbone is {info.backbone}, {cfg} builds {config_backbone})"
        return f"{first}; to start from its backbone only: pe-dense train {cfg} {backbone}"
    if info.kind in ("pe_dense", "other"):
        return "pass a checkpoint of the model (see pe-dense train/convert)"
    return ""


def _error(info: CheckpointInfo, command: str, config: str | None, tail: str = ""
           ) -> CheckpointError:
    fix = advice(info, command, config)
    return CheckpointError(f"{info.path} is {info.what}{',' if tail else ''}{tail}"
                           + (f"\nfix: {fix}" if fix else ""))


# ----------------------------------------------------------------------------- reading

def read_model_state_dict(path: str | os.PathLike, command: str = "test",
                          config: str | None = None
                          ) -> tuple[dict[str, torch.Tensor], dict[str, Any], CheckpointInfo]:
    """(state dict, meta, info) of a whole-model checkpoint: a ``pe-dense train`` checkpoint,
    a sharded folder (consolidated) or a bare task-model state dict (of any model but a lone
    PE tower). Anything else raises
    ``FileNotFoundError`` / :class:`CheckpointError` saying what the file is and, for
    ``command``, what to pass instead (``config``: the config named in that advice)."""
    info = inspect_checkpoint(path)
    if info.kind == "missing":
        raise FileNotFoundError(_missing_message(info.path))
    sd = state_dict_of(info.obj) if info.kind in (*_MODEL_KINDS, "other") else None
    if sd is None:  # "other": a bare state dict of a model without a PE tower is fine
        raise _error(info, command, config)
    meta = info.obj.get("meta", {}) if isinstance(info.obj, Mapping) else {}
    return sd, dict(meta) if isinstance(meta, Mapping) else {}, info


def backbone_of_training_checkpoint(obj: Any) -> dict[str, torch.Tensor] | None:
    """The PE tower's tensors (prefix removed) of a ``pe-dense train`` checkpoint object, or
    None when ``obj`` is not one (so ``model.backbone.weights`` can name a training run's
    checkpoint)."""
    if not (isinstance(obj, Mapping) and isinstance(obj.get("meta"), Mapping)
            and "state_dict" in obj):
        return None
    sd = state_dict_of(obj)
    prefix = _prefix_of(sd) if sd else None
    if not prefix:
        return None
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def check_weights_file(path: str | os.PathLike) -> str | None:
    """A problem with ``path`` as backbone weights, read from its first bytes only (None: it
    looks like a checkpoint). For config checks before anything is built."""
    info = inspect_checkpoint(path, read=False)
    if info.kind == "missing":
        return f"{path} does not exist"
    if info.kind in ("folder", "not-a-checkpoint", "truncated"):
        return f"{path} is {info.what}, not a checkpoint; {advice(info, 'weights')}"
    return None

"""Trained task models as Hugging Face Hub repositories.

A model repository is a folder of three files, the layout ``huggingface_hub``'s
``ModelHubMixin`` and timm use:

- ``config.py``: the mmengine config that builds the model (every ``_base_`` merged in, the
  class names added when they came from the checkpoint);
- ``model.safetensors``: every weight, loaded strictly by :func:`pe_dense.engine.build.load_model`;
  its header metadata (``pe_dense``: JSON) records the task, backbone, class names, training
  iteration and whether the weights are random;
- ``README.md``: the model card (:mod:`pe_dense.engine.model_card`).

:func:`save_pretrained` writes one (from a :class:`~pe_dense.engine.predictor.Predictor`, a
:class:`~pe_dense.engine.build.LoadedModel` or a module and its config), :func:`save_run` from a
config and a training checkpoint (``pe-dense push``), :func:`push_to_hub` uploads it, and
:func:`resolve_pretrained` / :func:`from_pretrained` read one back from ``hf://owner/repo``,
``owner/repo`` or a local folder. Hub access goes through :mod:`pe_dense.utils.hub`: offline it
uses the cache or fails at once, saying how to use a local folder.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pe_dense.engine.build import LoadedModel, class_names_of, load_model
from pe_dense.engine.model_card import CardInfo, render_card, training_data
from pe_dense.tasks.description import task_of
from pe_dense.utils.hub import HubUnavailable, download_repo, hub_unreachable, parse_hf_spec
from pe_dense.utils.io import atomic_path, atomic_write_text

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "CARD_FILE", "PretrainedFiles", "is_pretrained",
           "resolve_pretrained", "from_pretrained", "save_pretrained", "save_run",
           "push_to_hub", "read_metrics"]

log = logging.getLogger(__name__)

CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.py", "model.safetensors", "README.md"


@dataclass
class PretrainedFiles:
    """A model repository on disk: ``config`` and ``weights`` paths inside ``folder``;
    ``meta`` the ``pe_dense`` metadata of the weights file; ``source`` what was asked for."""

    folder: Path
    config: Path
    weights: Path
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def random_weights(self) -> bool:
        """Whether the repository says its weights were never trained."""
        return bool(self.meta.get("random_weights", False))

    @property
    def class_names(self) -> tuple[str, ...] | None:
        names = self.meta.get("class_names")
        return tuple(names) if names else None


def _is_repo_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def is_pretrained(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names a model repository: ``hf://owner/repo`` or a folder holding
    ``config.py`` and ``model.safetensors`` (what the CLI accepts in place of CONFIG CKPT)."""
    text = str(spec)
    return text.startswith("hf://") or _is_repo_folder(Path(text).expanduser())


def _read_meta(weights: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{weights} is not a readable safetensors file ({exc}); download "
                         "the repository again") from exc
    try:
        return json.loads(header.get("pe_dense", "{}"))
    except json.JSONDecodeError:
        return {}


def resolve_pretrained(spec: str | os.PathLike, revision: str | None = None) -> PretrainedFiles:
    """The files of a model repository: ``hf://owner/repo[@revision]``, ``owner/repo`` (when
    no such local path exists) or a local folder. Hub repositories are downloaded (cached);
    offline see :mod:`pe_dense.utils.hub`."""
    text = str(spec)
    local = Path(text).expanduser()
    if not text.startswith("hf://") and local.exists():
        folder = local
    elif text.startswith("hf://") or text.count("/") == 1:
        repo, rev = parse_hf_spec(text)
        folder = Path(download_repo(repo, revision or rev))
    else:
        raise FileNotFoundError(f"{text} is neither a folder nor hf://owner/repo")
    missing = [n for n in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / n).is_file()]
    if missing:
        have = sorted(p.name for p in folder.iterdir())[:8] if folder.is_dir() else []
        raise FileNotFoundError(
            f"{text} is not a pe-dense model repository: it has no {' and no '.join(missing)} "
            f"(it holds {', '.join(have) or 'nothing'}); write one with pe-dense push CONFIG "
            "CKPT REPO_ID --local DIR")
    weights = folder / WEIGHTS_FILE
    return PretrainedFiles(folder, folder / CONFIG_FILE, weights, text, _read_meta(weights))


def from_pretrained(spec: str | os.PathLike, device: str | torch.device | None = "auto",
                    revision: str | None = None) -> LoadedModel:
    """The task model of a repository (see :func:`resolve_pretrained`) in eval mode on
    ``device``; its ``meta`` holds the repository's metadata (``random_weights``,
    ``class_names``, ``task``, ...) and ``"pretrained"``: the folder it was read from."""
    files = resolve_pretrained(spec, revision)
    loaded = load_model(files.config, files.weights, device, class_names=files.class_names)
    loaded.meta = {**files.meta, "pretrained": str(files.folder)}
    return loaded


# ----------------------------------------------------------------------------- writing

def read_metrics(path: str | os.PathLike, checkpoint: str | os.PathLike | None = None
                 ) -> tuple[dict[str, Any], str] | None:
    """(metrics, where from) of a ``metrics.json`` written by ``pe-dense test``; None when
    it is missing or was measured on another checkpoint than ``checkpoint``."""
    path = Path(path)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    metrics = data.get("metrics", data) if isinstance(data, dict) else None
    if not isinstance(metrics, dict) or not metrics:
        return None
    measured = data.get("checkpoint")
    if checkpoint is not None and measured and Path(measured).name != Path(checkpoint).name:
        log.warning("%s holds metrics of %s, not of %s: left out of the model card (run "
                    "pe-dense test CONFIG %s first)", path, measured, checkpoint, checkpoint)
        return None
    return metrics, f"`pe-dense test` of {Path(measured).name if measured else 'this model'}"


def _state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous copies (tensors that share storage are written once each)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def _write_weights(module: torch.nn.Module, record: dict[str, Any], path: Path) -> None:
    """Every tensor of ``module`` as safetensors, ``record`` as JSON in the header's
    ``pe_dense`` entry."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(_state_dict(module), str(tmp),
                  metadata={"format": "pt", "pe_dense": json.dumps(record)})


def _write_config(cfg: Any, names: Sequence[str] | None, path: Path) -> None:
    from mmengine.config import Config

    cfg = copy.deepcopy(cfg)
    if names and class_names_of(cfg) != tuple(names):
        cfg.class_names = tuple(names)
    with atomic_path(path) as tmp:
        cfg.dump(str(tmp))
        try:
            Config.fromfile(str(tmp))
        except Exception as exc:  # a config value mmengine cannot write back as Python
            raise ValueError(f"the config cannot be saved as {CONFIG_FILE}: mmengine's dump of "
                             f"it does not load again ({type(exc).__name__}: {exc})") from exc


def _backbone_spec(cfg: Any) -> tuple[str | None, str | None]:
    """(variant name, weights the training started from) of the config's backbone."""
    spec = cfg.model.get("backbone") if hasattr(cfg, "model") else None
    if not isinstance(spec, Mapping):
        return None, None
    weights = spec.get("weights")
    return spec.get("name"), str(weights) if weights else None


def _schedule(cfg: Any) -> str | None:
    train, loader = cfg.get("train_cfg") or {}, cfg.get("train_dataloader") or {}
    parts = []
    if train.get("max_iters"):
        parts.append(f"{train['max_iters']} iterations")
    elif train.get("max_epochs"):
        parts.append(f"{train['max_epochs']} epochs")
    if loader.get("batch_size"):
        parts.append(f"batch size {loader['batch_size']} per process")
    return f"Schedule: {', '.join(parts)} (`train_cfg`, `train_dataloader` in config.py)." \
        if parts else None


def save_pretrained(model: Any, save_directory: str | os.PathLike, *, cfg: Any = None,
                    class_names: Sequence[str] | None = None, random_weights: bool | None = None,
                    meta: Mapping[str, Any] | None = None,
                    metrics: Mapping[str, Any] | None = None, metrics_source: str | None = None,
                    command: str | None = None, license: str = "apache-2.0",
                    repo_id: str | None = None) -> Path:
    """Write ``config.py``, ``model.safetensors`` and ``README.md`` to ``save_directory``.

    ``model``: a :class:`~pe_dense.engine.predictor.Predictor` or
    :class:`~pe_dense.engine.build.LoadedModel` (config, class names and random-weights flag
    taken from it), or a task ``nn.Module`` with its mmengine ``cfg``. ``random_weights``:
    whether the weights were never trained (default: the Predictor's flag; the card then
    carries the warning and pe-dense marks every picture made with the repository);
    ``meta``: the training checkpoint's ``meta`` (its iteration goes into the card);
    ``metrics``: ``{"name": value}`` for the card; ``command``: the command that trained it;
    ``repo_id``: the hub repository the card's examples name. Returns the folder.
    """
    module = getattr(model, "model", model)
    cfg = cfg if cfg is not None else getattr(model, "cfg", None)
    if not isinstance(module, torch.nn.Module) or cfg is None:
        raise TypeError("save_pretrained needs a Predictor, a LoadedModel, or a task module "
                        "with cfg=its mmengine Config (config.py is written from it)")
    if random_weights is None:
        random_weights = bool(getattr(model, "random_weights", False))
    names = class_names or getattr(model, "class_names", None)
    meta = dict(meta if meta is not None else getattr(model, "meta", None) or {})
    desc = task_of(module)
    backbone, init = _backbone_spec(cfg)
    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    _write_config(cfg, names, folder / CONFIG_FILE)
    from pe_dense import __version__

    record = {"pe_dense_version": __version__, "task": desc.name,
              "model_type": type(module).__name__, "backbone": backbone,
              "class_names": list(names) if names else None,
              "random_weights": bool(random_weights), "iteration": meta.get("iter")}
    _write_weights(module, record, folder / WEIGHTS_FILE)
    info = CardInfo(
        task=desc.name, pipeline_tag=desc.pipeline_tag, model_type=type(module).__name__,
        backbone=backbone, backbone_init=init,
        num_params=sum(p.numel() for p in module.parameters()), class_names=names,
        training_data=training_data(cfg), schedule=_schedule(cfg), metrics=metrics,
        metrics_source=metrics_source, command=command, iteration=meta.get("iter"),
        random_weights=bool(random_weights), license=license, repo_id=repo_id,
        pe_dense_version=__version__)
    atomic_write_text(folder / CARD_FILE, render_card(info))
    log.info("wrote %s (%s, %s, %s)", folder, CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)
    return folder


def save_run(config: str | os.PathLike | Any, checkpoint: str | os.PathLike,
             save_directory: str | os.PathLike, *, cfg_options: Any = None,
             metrics: str | os.PathLike | None = None, command: str | None = None,
             license: str = "apache-2.0", repo_id: str | None = None) -> Path:
    """A training run's checkpoint as a model repository (``pe-dense push``): the model is
    built from ``config`` and ``checkpoint`` is loaded strictly on the CPU, so a checkpoint
    of another config fails here and not for the people who download it. ``metrics``: a
    ``metrics.json`` (default: the one next to the checkpoint, written by ``pe-dense test``,
    when it was measured on this checkpoint)."""
    loaded = load_model(config, checkpoint, device="cpu", cfg_options=cfg_options)
    found = read_metrics(metrics or Path(checkpoint).parent / "metrics.json",
                         None if metrics else checkpoint)
    values, source = found if found else (None, None)
    return save_pretrained(loaded, save_directory, meta=loaded.meta, metrics=values,
                           metrics_source=source, command=command, license=license,
                           repo_id=repo_id)


def push_to_hub(folder: str | os.PathLike, repo_id: str, *, private: bool | None = None,
                token: str | None = None, message: str | None = None,
                revision: str | None = None) -> str:
    """Upload a repository folder (from :func:`save_pretrained`) to ``repo_id``, creating the
    repository when needed; returns its URL. Without a network it fails at once, saying where
    the folder is and how to upload it later."""
    folder = Path(folder)
    parse_hf_spec(repo_id)
    if not _is_repo_folder(folder):
        raise FileNotFoundError(f"{folder} is not a model repository folder (config.py and "
                                "model.safetensors); write it with save_pretrained first")
    reason = hub_unreachable()
    if reason is not None:
        raise HubUnavailable(f"cannot push to hf://{repo_id}: {reason}. The repository is "
                             f"written at {folder}; upload it from a connected machine with "
                             f"`hf upload {repo_id} {folder}`")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                          commit_message=message or "Upload pe-dense model")
    except HfHubHTTPError as exc:
        raise RuntimeError(f"pushing to hf://{repo_id} failed ({exc}); log in with "
                           "`hf auth login` or set HF_TOKEN, and check you may write to "
                           "that namespace") from exc
    return str(url)


def temporary_folder(prefix: str = "pe-dense-repo-") -> Path:
    """A fresh temporary folder for a repository that is only uploaded."""
    return Path(tempfile.mkdtemp(prefix=prefix))

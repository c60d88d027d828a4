"""The ``README.md`` model card of a task model's hub repository (see :mod:`pe_dense.engine.hub`).

A card is YAML metadata (library, licence, the hub's task from the model's
:class:`~pe_dense.tasks.description.TaskDescription`, tags, the base backbone repo) and a body:
what the model is (task, architecture, backbone and how it was initialised, classes), the data
it was trained on (from the config), the metrics (a ``metrics.json`` of ``pe-dense test``), the
command that trained it when known, how to use it, the licence, and the random-weights warning
for a model whose weights were never trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CardInfo", "render_card", "training_data", "RANDOM_WARNING"]

RANDOM_WARNING = ("**Random weights, not a trained model.** This repository was saved from a "
                  "model whose weights were never trained (no checkpoint was loaded); its "
                  "predictions carry no meaning, and pe-dense marks every picture made with it. "
                  "It exists to show the format and the loading path.")

_DATA_KEYS = ("data_root", "root", "ann_file", "img_dir", "img_path", "seg_map_path",
              "split_file", "data_prefix")


@dataclass
class CardInfo:
    """What a model card says. ``metrics``: ``{"name": value}`` (``metrics_source``: where
    they come from); ``command``: the command that trained the model (None: not recorded);
    ``repo_id``: the hub repository the card is for (None: a local folder)."""

    task: str
    pipeline_tag: str | None
    model_type: str
    backbone: str | None
    backbone_init: str | None
    num_params: int
    class_names: Sequence[str] | None = None
    training_data: list[str] = field(default_factory=list)
    schedule: str | None = None
    metrics: Mapping[str, Any] | None = None
    metrics_source: str | None = None
    command: str | None = None
    iteration: int | None = None
    random_weights: bool = False
    license: str = "apache-2.0"
    repo_id: str | None = None
    pe_dense_version: str = ""


def _dataset_line(name: str, dataset: Any) -> str | None:
    """``train: CocoDataset (data_root=data/coco, ann_file=...)`` from a dataloader's
    ``dataset`` entry (wrappers such as ``ConcatDataset`` listed with their parts)."""
    if not isinstance(dataset, Mapping):
        return None
    kind = dataset.get("type", "dataset")
    if "datasets" in dataset:
        parts = [_dataset_line("", d) for d in dataset["datasets"]]
        return f"{name}: {kind} of " + "; ".join(p.lstrip(": ") for p in parts if p)
    inner = dataset.get("dataset")
    if isinstance(inner, Mapping):  # RepeatDataset & co.
        line = _dataset_line(name, inner)
        return line and line.replace(f"{name}: ", f"{name}: {kind} of ", 1)
    where = ", ".join(f"{k}={dataset[k]}" for k in _DATA_KEYS if dataset.get(k))
    return f"{name}: {kind}" + (f" ({where})" if where else "")


def training_data(cfg: Any) -> list[str]:
    """One line per split the config names: its dataset type and where its files were read
    from (``data_root``, ``ann_file``, ...)."""
    lines = []
    for split in ("train", "val", "test"):
        try:
            loader = cfg.get(f"{split}_dataloader")
        except AttributeError:
            loader = None
        line = _dataset_line(split, (loader or {}).get("dataset")) if loader else None
        if line and line.split(": ", 1)[1] not in {x.split(": ", 1)[1] for x in lines}:
            lines.append(line)
    return lines


def _yaml(info: CardInfo) -> str:
    from huggingface_hub import ModelCardData

    tags = ["pe-dense", "perception-encoder", info.task]
    if info.backbone:
        tags.append(info.backbone)
    if info.random_weights:
        tags.append("random-weights")
    base = info.backbone_init[len("hf://"):].split(":")[0] if (
        info.backbone_init or "").startswith("hf://") else None
    data = ModelCardData(library_name="pe-dense", license=info.license,
                         pipeline_tag=info.pipeline_tag, tags=tags, base_model=base)
    return data.to_yaml()


def _metrics_block(info: CardInfo) -> list[str]:
    if info.random_weights:
        return ["None: the weights are random."]
    if not info.metrics:
        return ["No `metrics.json` was found next to the checkpoint. Evaluate the model with "
                "`pe-dense test config.py model.safetensors` on the config's test split "
                "(it writes `metrics.json` in the work dir)."]
    lines = [f"From {info.metrics_source or 'metrics.json'}:", "", "| metric | value |",
             "|---|---|"]
    for name, value in info.metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"| {name} | {shown} |")
    return lines


def _summary(info: CardInfo) -> list[str]:
    """The table of what the model is."""
    init = info.backbone_init or "random initialisation (trained from scratch)"
    if info.random_weights:
        init = "nothing: the weights are random"
    rows = [f"| Task | {info.task} |", f"| Architecture | {info.model_type} |",
            f"| Backbone | {info.backbone or 'see config.py'} |",
            f"| Backbone initialised from | {init} |",
            f"| Parameters | {info.num_params / 1e6:.2f} M |"]
    if info.class_names:
        shown = ", ".join(info.class_names[:20])
        more = f", ... ({len(info.class_names)} in all)" if len(info.class_names) > 20 else ""
        rows.append(f"| Classes | {shown}{more} |")
    if info.iteration is not None:
        rows.append(f"| Training iterations | {info.iteration} |")
    return ["| | |", "|---|---|", *rows]


def _training(info: CardInfo) -> list[str]:
    lines = ["## Training data", ""]
    lines += [f"- {line}" for line in info.training_data] or ["Not recorded in the config."]
    if info.schedule:
        lines += ["", info.schedule]
    lines += ["", "## Training command", ""]
    lines += [f"```bash\n{info.command}\n```"] if info.command else [
        "Not recorded. `config.py` is the full configuration of the run (`pe-dense train "
        "config.py` repeats it with the same data)."]
    return lines


def _use(info: CardInfo, repo: str) -> list[str]:
    return ["## Use", "", "```python", "from pe_dense.engine.predictor import Predictor", "",
            f'predictor = Predictor.from_pretrained("{repo}")',
            'prediction = predictor("photo.jpg")',
            'drawing = predictor.draw("photo.jpg", prediction)', "```", "", "```bash",
            f"pe-dense predict hf://{repo} photos/ --out preds/",
            f"pe-dense demo --web --from hf://{repo}", "```", "",
            f"Offline: download the repository on a connected machine (`hf download {repo} "
            "--local-dir DIR`) and pass `DIR` wherever `hf://...` appears above.", "",
            "## Files", "",
            "- `config.py`: the mmengine config that builds the model (pe-dense "
            f"{info.pe_dense_version})",
            "- `model.safetensors`: every weight of the model, loaded strictly",
            "- `README.md`: this card", "", "## Licence", "",
            f"{info.license}. The Perception Encoder backbone weights are released by Meta "
            "under their own licence (see facebook/perception_models); check it before use."]


def render_card(info: CardInfo) -> str:
    """The model card text (YAML front matter + Markdown)."""
    repo = info.repo_id or "OWNER/REPO"
    title = info.repo_id.split("/")[-1] if info.repo_id else \
        f"{info.model_type} on {info.backbone or 'PE'}"
    body = [f"# {title}", ""]
    if info.random_weights:
        body += [f"> {RANDOM_WARNING}", ""]
    body += [f"A {info.task} model made with pe-dense on Perception Encoder features.", "",
             *_summary(info), "", *_training(info), "", "## Metrics", "",
             *_metrics_block(info), "", *_use(info, repo)]
    return f"---\n{_yaml(info)}\n---\n\n" + "\n".join(body) + "\n"

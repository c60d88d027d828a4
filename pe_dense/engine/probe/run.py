"""One probe run: every encoder through every task's protocol, results written as they come."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from pe_dense.backbone.contract import Backbone
from pe_dense.backbone.factory import create_backbone
from pe_dense.engine.probe.dense import depth_probe, seg_probe
from pe_dense.engine.probe.report import write_outputs
from pe_dense.engine.probe.settings import ProbeSettings
from pe_dense.engine.probe.track import track_probe
from pe_dense.tracking.evaluate import parse_layers
from pe_dense.utils.device import pick_device
from pe_dense.utils.modules import freeze

__all__ = ["run_probe", "PROTOCOLS", "build_encoder"]

log = logging.getLogger(__name__)

Protocol = Callable[[Backbone, list[int], ProbeSettings], dict[int, dict[str, float]]]
PROTOCOLS: dict[str, Protocol] = {"seg": seg_probe, "depth": depth_probe, "track": track_probe}


def build_encoder(name: str, weights: str | None, settings: ProbeSettings) -> Backbone:
    """The frozen backbone (eval mode, no gradients) on the settings' device; random weights
    come from ``settings.seed``, so a run is repeatable."""
    torch.manual_seed(settings.seed)
    backbone = create_backbone(name, weights=weights, **settings.overrides.get(name, {}))
    return freeze(backbone).to(pick_device(settings.device))


def _machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_start": [round(v, 2) for v in os.getloadavg()]}


def _encoder_record(name: str, weights: str | None, backbone: Backbone,
                    indices: list[int]) -> dict[str, Any]:
    return {"name": name, "weights": weights, "random_weights": weights is None,
            "num_layers": backbone.num_layers, "patch_size": backbone.patch_size,
            "embed_dim": backbone.embed_dim, "indices": indices, "tasks": {}}


def run_probe(settings: ProbeSettings, out: str | Path,
              on_stage: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    """Run every task of ``settings`` on every encoder; ``out`` gets ``probe.json`` (rewritten
    after each task, so an interrupted run keeps what it measured), ``probe.md`` and
    ``probe.png``. ``on_stage(encoder, task)`` is called before each task. Returns the result
    (``probe.json``'s content: settings, machine, and per encoder its blocks and, per task,
    ``per_block`` metrics and ``seconds``)."""
    settings.check_data()
    started, cpu = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {"settings": json.loads(json.dumps(asdict(settings))),
                              "machine": _machine(),
                              "encoders": []}
    for name, weights in zip(settings.backbones, settings.weights, strict=True):
        if weights is None:
            log.warning("%s has random weights (no weights given): the probe numbers show the "
                        "protocol, not the encoder", name)
        backbone = build_encoder(name, weights, settings)
        indices = parse_layers(settings.layers, backbone.num_layers)
        record = _encoder_record(name, weights, backbone, indices)
        result["encoders"].append(record)
        for task in settings.tasks:
            if on_stage:
                on_stage(name, task)
            began = time.perf_counter()
            per_block = PROTOCOLS[task](backbone, indices, settings)
            record["tasks"][task] = {"per_block": {str(b): m for b, m in per_block.items()},
                                     "seconds": round(time.perf_counter() - began, 2)}
            _finish(result, started, cpu)
            write_outputs(result, out, plot=False)
        del backbone
    _finish(result, started, cpu)
    write_outputs(result, out)
    return result


def _finish(result: dict[str, Any], started: float, cpu: float) -> None:
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["cpu_seconds"] = round(time.process_time() - cpu, 1)
    result["machine"]["load_end"] = [round(v, 2) for v in os.getloadavg()]

"""SAM 2 / 2.1 builder: the only module that imports the ``sam2`` package.

``pip install 'pe-dense[sam2]'`` (i.e. ``SAM2_BUILD_CUDA=0 pip install --no-build-isolation
sam2==1.1.0``). :func:`build_sam2_model` builds the network from any SAM 2 / 2.1 config;
:func:`build_sam2_teacher` wraps it in the library's
:class:`pe_dense.distill.sam2_teacher.SAM2MaskTeacher` and is the ``"sam2"`` builder that
:func:`pe_dense.distill.teachers.build_teacher` takes (``builders={"sam2": build_sam2_teacher}``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from pe_dense.distill.sam2_teacher import SAM2MaskTeacher
from pe_dense.utils.seeding import seeded

__all__ = ["build_sam2_model", "build_sam2_teacher", "import_sam2", "INSTALL_HINT"]

log = logging.getLogger(__name__)

INSTALL_HINT = ("the SAM 2 teacher needs the 'sam2' package: pip install 'pe-dense[sam2]' "
                "(or SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0)")


def import_sam2() -> Any:
    """Import ``sam2.build_sam`` or fail with the install command."""
    try:
        from sam2 import build_sam
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    return build_sam


def build_sam2_model(config: str = "configs/sam2.1/sam2.1_hiera_l.yaml",
                     checkpoint: str | None = None, image_size: int = 1024,
                     seed: int | None = 0, device: str | torch.device = "cpu") -> nn.Module:
    """A SAM 2 / 2.1 network (``SAM2Base``, eval mode) from ``config`` (a name inside the sam2
    package such as ``configs/sam2.1/sam2.1_hiera_t.yaml``) and ``checkpoint`` (the official
    ``.pt``; None gives random weights, seeded by ``seed``, for tests). ``image_size`` other
    than 1024 overrides the model's input size (only meaningful with random weights or for
    quick checks)."""
    build_sam = import_sam2()
    overrides = [] if image_size == 1024 else [f"++model.image_size={int(image_size)}"]
    if checkpoint is None:
        log.warning("SAM 2 teacher %s has random weights (seed %s)", config, seed)
    with seeded(seed):
        return build_sam.build_sam2(config, ckpt_path=checkpoint, device=str(device),
                                    mode="eval", hydra_overrides_extra=overrides,
                                    apply_postprocessing=False)


def build_sam2_teacher(config: str = "configs/sam2.1/sam2.1_hiera_l.yaml",
                       checkpoint: str | None = None, image_size: int = 1024,
                       points_per_side: int = 32, chunk: int = 256, seed: int | None = 0,
                       device: str | torch.device = "cpu") -> SAM2MaskTeacher:
    """A frozen SAM 2 teacher (:class:`SAM2MaskTeacher`) on :func:`build_sam2_model`'s network;
    the keyword arguments are a ``kind="sam2"`` teacher config's."""
    model = build_sam2_model(config, checkpoint, image_size, seed, device)
    info = {"config": config, "checkpoint": checkpoint, "seed": seed}
    return SAM2MaskTeacher(model, points_per_side=points_per_side, chunk=chunk, info=info)

"""COCO instances JSON: read and sanity-check, shared by the dataset and the evaluator."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["load_coco_json"]


def load_coco_json(ann_file: str | os.PathLike) -> dict[str, Any]:
    """Read and sanity-check a COCO instances JSON; clear errors for missing/malformed files."""
    path = Path(ann_file)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist (expected COCO layout "
                                "annotations/instances_<split>.json)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"annotation file {path} is not valid JSON ({exc}); re-download or "
                         "regenerate it") from exc
    if not isinstance(data, dict):
        raise ValueError(f"annotation file {path}: expected a JSON object with 'images', "
                         f"'annotations' and 'categories', got {type(data).__name__}")
    missing = [k for k in ("images", "categories") if k not in data]
    if missing:
        raise ValueError(f"annotation file {path} lacks {missing}; it is not a COCO instances file")
    if not data["images"]:
        raise ValueError(f"annotation file {path} lists no images")
    if not data["categories"]:
        raise ValueError(f"annotation file {path} lists no categories")
    data.setdefault("annotations", [])
    return data

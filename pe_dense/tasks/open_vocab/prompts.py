"""Prompts and prompt templates.

Templates: ``"imagenet"`` (the 80 OpenAI CLIP ImageNet templates that CLIP evaluations average
over), ``"simple"`` (CLIP's 7-template subset), ``"none"`` (the prompt as typed, ``"{}"``) or a
text file with one template per line containing ``{}``. The two template sets are read from
the installed ``open_clip_torch`` (``zero_shot_metadata.py``, loaded as a file so that
open_clip itself, which imports timm, is not imported), like the BPE vocabulary.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from pe_dense.backbone.tokenizer import open_clip_file

__all__ = ["TEMPLATE_SETS", "get_templates", "parse_prompts", "read_prompts_file",
           "check_prompts", "expand"]

TEMPLATE_SETS = ("imagenet", "simple", "none")


@lru_cache(maxsize=1)
def _open_clip_templates() -> dict[str, tuple[str, ...]]:
    path = open_clip_file("zero_shot_metadata.py")
    spec = importlib.util.spec_from_file_location("_pe_dense_zero_shot_metadata", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return {"imagenet": tuple(t("{}") for t in module.OPENAI_IMAGENET_TEMPLATES),
            "simple": tuple(t("{}") for t in module.SIMPLE_IMAGENET_TEMPLATES)}


def get_templates(spec: str | Sequence[str] = "imagenet") -> tuple[str, ...]:
    """A template set name, a file of templates, or a list of templates -> templates with
    ``{}``. A ``ValueError`` says what is accepted."""
    if not isinstance(spec, str):
        templates = tuple(spec)
    elif spec == "none":
        return ("{}",)
    elif spec in TEMPLATE_SETS:
        return _open_clip_templates()[spec]
    elif Path(spec).is_file():
        templates = tuple(line.strip() for line in Path(spec).read_text().splitlines()
                          if line.strip())
    else:
        raise ValueError(f"templates {spec!r}: use one of {TEMPLATE_SETS} or a text file with "
                         "one template per line, each containing {} for the prompt")
    bad = [t for t in templates if "{}" not in t]
    if not templates or bad:
        raise ValueError(f"every template needs a {{}} for the prompt; got {bad or 'none'}")
    return templates


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """Prompts stripped; a ``ValueError`` for an empty list or duplicates."""
    out = [p.strip() for p in prompts]
    if not out or all(not p for p in out):
        raise ValueError("no prompts given: pass class names, e.g. --prompts 'sky,road,car' "
                         "(or --labels / --labels-file for classify)")
    dup = sorted({p for p in out if out.count(p) > 1})
    if dup:
        raise ValueError(f"duplicate prompts {dup}: give each class once")
    return out


def parse_prompts(text: str) -> list[str]:
    """``"sky, road,car"`` -> ``["sky", "road", "car"]`` (empty items dropped, then checked)."""
    return check_prompts([p for p in text.split(",") if p.strip()])


def read_prompts_file(path: str | os.PathLike) -> list[str]:
    """One prompt per line (blank lines and ``#`` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labels file {path} does not exist")
    lines = [line.strip() for line in path.read_text().splitlines()]
    return check_prompts([line for line in lines if line and not line.startswith("#")])


def expand(prompts: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Every prompt in every template, prompt-major: K * T strings."""
    return [t.format(p) for p in prompts for t in templates]

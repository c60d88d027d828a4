"""The whole config checked before the engine starts: every problem at once, in a few lines.

:func:`check_syntax` names the file and line of a syntax error (in the config or one of its
``_base_`` files); :func:`check_run` looks at a loaded config for a ``train`` or ``test`` run:

- keys of every typed section (``model``, datasets, samplers, metrics, hooks, optimiser,
  schedulers, loops, data loaders, transforms) against what the registered class accepts, with
  "did you mean", and values against simple annotations (``max_iters: int`` ...);
- PE variant names (``model.backbone.name`` ...);
- data paths and annotation files of the splits the run reads;
- weight and checkpoint files (``model.backbone.weights``, ``load_from``), from their first
  bytes.

:func:`explain_type_error` turns a ``TypeError`` raised while the model is built (a typo in a
nested section such as ``model.rpn``) into the dotted key and the options of the class.
Problems are :class:`ConfigError` messages of at most 15 lines.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pe_dense.backbone.checkpoints import check_weights_file
from pe_dense.backbone.variants import VARIANTS
from pe_dense.engine import registry

__all__ = ["ConfigError", "check_syntax", "check_run", "check_option_types",
           "explain_type_error"]

MAX_PROBLEMS = 10
_EXTRA_KEYS = {  # keys consumed by mmengine (or pe_dense) before the class is called
    "optim_wrapper": {"constructor", "paramwise_cfg", "optimizer"},
    "loop": {"skip_nonfinite", "skip_bad_samples"},
    "scheduler": {"convert_to_iter_based"},
}
# Arguments mmengine passes itself (not config keys), per kind of section.
_INJECTED = {"sampler": {"dataset"}, "scheduler": {"optimizer"}, "loop": {"runner", "dataloader"},
             "optimizer": {"params"}, "loader": {"dataset"}}


class ConfigError(ValueError):
    """A config that cannot run as written (typo, missing section); the message says what to fix."""


def _near(key: str, options: Sequence[str], cutoff: float = 0.75) -> list[str]:
    return difflib.get_close_matches(key, list(options), n=3, cutoff=cutoff)


# ----------------------------------------------------------------------------- syntax

def _base_files(path: Path, tree: ast.Module) -> list[Path]:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "_base_"):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            names = [value] if isinstance(value, str) else list(value)
            return [(path.parent / name).resolve() for name in names if isinstance(name, str)]
    return []


def check_syntax(path: str | Path, seen: set[Path] | None = None) -> None:
    """A :class:`ConfigError` naming the file, line and text of the first syntax error in
    ``path`` or its ``_base_`` files."""
    path = Path(path)
    seen = set() if seen is None else seen
    if path in seen or not path.is_file():
        return
    seen.add(path)
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        text = (exc.text or "").rstrip("\n")
        caret = " " * max((exc.offset or 1) - 1, 0) + "^"
        raise ConfigError(f"config {path}, line {exc.lineno}: syntax error: {exc.msg}\n"
                          f"    {text.strip()}\n    {caret[len(text) - len(text.lstrip()):]}"
                          ) from None
    for base in _base_files(path, tree):
        check_syntax(base, seen)


def explain_load_error(path: Path, exc: BaseException) -> ConfigError:
    """A config file that fails while it runs (a NameError ...): the error and its line."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.endswith(".py") and "site-packages" not in name and not name.startswith(
                sys.prefix):
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f", line {line}" if line else ""
    return ConfigError(f"config {path}{where} (or one of its _base_ files): "
                       f"{type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------------- classes

def _registries() -> dict[str, Any]:
    return {"model": registry.MODELS, "model part": registry.MODELS,
            "dataset": registry.DATASETS,
            "sampler": registry.DATA_SAMPLERS, "metric": registry.METRICS,
            "hook": registry.HOOKS, "optimizer": registry.OPTIMIZERS,
            "optim_wrapper": registry.OPTIM_WRAPPERS, "scheduler": registry.PARAM_SCHEDULERS,
            "loop": registry.LOOPS, "transform": registry.TRANSFORMS}


def _lookup(kind: str, name: str, scope: str) -> Any:
    reg = _registries()[kind]
    with reg.switch_scope_and_registry(scope) as found:
        return found.get(name)


def _known_names(kind: str) -> list[str]:
    reg, names = _registries()[kind], set()
    while reg is not None:
        names |= set(reg.module_dict)
        reg = reg.parent
    return sorted(names)


def accepted(target: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    """(keyword parameters, closed) of a class or function: along the MRO while an
    ``__init__`` passes ``**kwargs`` on; ``closed`` is False when some ``**kwargs`` may go
    anywhere (then only near-misses are reported)."""
    chain = ([c for c in target.__mro__ if "__init__" in vars(c)] if isinstance(target, type)
             else [target])
    params: dict[str, inspect.Parameter] = {}
    for item in chain:
        fn = item.__init__ if isinstance(item, type) else item
        if fn is object.__init__:
            return params, False
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return params, False
        for p in signature.parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in params:
                params[p.name] = p
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            return params, True
    return params, False


_SIMPLE = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _expected(annotation: Any) -> tuple[str, bool] | None:
    """(simple type name, None allowed) of an annotation like ``int``, ``float | None``."""
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation if isinstance(annotation, str) else getattr(
        annotation, "__name__", str(annotation))
    text = text.replace("typing.", "").replace(" ", "")
    optional = False
    if text.startswith("Optional[") and text.endswith("]"):
        text, optional = text[len("Optional["):-1], True
    parts = text.split("|")
    if "None" in parts:
        parts.remove("None")
        optional = True
    return (parts[0], optional) if len(parts) == 1 and parts[0] in _SIMPLE else None


def _type_problem(where: str, value: Any, param: inspect.Parameter, owner: str) -> str | None:
    expected = _expected(param.annotation)
    if expected is None or (value is None and expected[1]) or value is None:
        return None
    name, _ = expected
    ok = isinstance(value, _SIMPLE[name]) and not (name != "bool" and isinstance(value, bool))
    if ok or (name == "float" and isinstance(value, int) and not isinstance(value, bool)):
        return None
    return f"{where}={value!r}: {owner} expects {'an' if name == 'int' else 'a'} {name}"


def _check_typed(where: str, spec: Mapping[str, Any], kind: str, scope: str,
                 extra: set[str] = frozenset(), default_type: str | None = None) -> list[str]:
    name = spec.get("type", default_type)
    if isinstance(name, type) or callable(name) and not isinstance(name, str):
        target = name
    elif isinstance(name, str):
        target = _lookup(kind, name, scope)
        if target is None:
            if kind in ("transform", "model part"):
                return []  # library tables of their own (pipelines, pyramid types ...)
            near = _near(name.split(".")[-1], _known_names(kind), 0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            return [f"{where}.type={name!r}: no {kind} of that name is registered{hint}"]
    else:
        return []
    params, closed = accepted(target)
    owner = getattr(target, "__name__", str(target))
    injected = _INJECTED.get(kind, set()) | {"self"}
    options = (set(params) | set(extra)) - injected
    problems = []
    for key, value in spec.items():
        if key == "type" or key in extra:
            continue
        if key not in params or key in injected:
            near = _near(key, sorted(options))
            if near or closed:
                hint = (f"did you mean {near[0]}?" if near else
                        f"{owner} takes {', '.join(sorted(options))[:200]}")
                problems.append(f"{where}.{key}: not an option of {owner}; {hint}")
            continue
        problem = _type_problem(f"{where}.{key}", value, params[key], owner)
        if problem:
            problems.append(problem)
    return problems


def _sections(cfg: Any, mode: str) -> Iterator[tuple[str, Mapping[str, Any], str, set[str],
                                                       str | None]]:
    """(dotted key, spec, registry kind, extra keys, default type) of each typed section."""
    model = cfg.get("model")
    if isinstance(model, Mapping):
        yield "model", model, "model", set(), None
        for key, value in model.items():  # nested typed parts (data_preprocessor ...)
            if isinstance(value, Mapping) and "type" in value:
                yield f"model.{key}", value, "model part", set(), None
    splits = {"train": ("train", "val"), "test": ("test",)}[mode]
    for split in splits:
        if split == "val" and not cfg.get("val_cfg"):
            continue
        loader = cfg.get(f"{split}_dataloader")
        if isinstance(loader, Mapping):
            yield from _loader_sections(f"{split}_dataloader", loader)
        evaluator = cfg.get(f"{split}_evaluator") if split != "train" else None
        for i, metric in enumerate(evaluator if isinstance(evaluator, list) else [evaluator]):
            if isinstance(metric, Mapping):
                at = f"{split}_evaluator" + (f".{i}" if isinstance(evaluator, list) else "")
                yield at, metric, "metric", set(), None
        loop = cfg.get(f"{split}_cfg")
        if isinstance(loop, Mapping) and "type" in loop:
            yield f"{split}_cfg", loop, "loop", _EXTRA_KEYS["loop"], None
    if mode == "train":
        hooks = cfg.get("default_hooks")
        for key, hook in (hooks.items() if isinstance(hooks, Mapping) else ()):
            if isinstance(hook, Mapping):
                yield f"default_hooks.{key}", hook, "hook", set(), None
        for i, hook in enumerate(cfg.get("custom_hooks") or []):
            if isinstance(hook, Mapping):
                yield f"custom_hooks.{i}", hook, "hook", set(), None
        wrapper = cfg.get("optim_wrapper")
        if isinstance(wrapper, Mapping):
            yield ("optim_wrapper", wrapper, "optim_wrapper", _EXTRA_KEYS["optim_wrapper"],
                   "OptimWrapper")
            if isinstance(wrapper.get("optimizer"), Mapping):
                yield "optim_wrapper.optimizer", wrapper["optimizer"], "optimizer", set(), None
        schedulers = cfg.get("param_scheduler")
        for i, sched in enumerate(schedulers if isinstance(schedulers, list) else [schedulers]):
            if isinstance(sched, Mapping):
                at = "param_scheduler" + (f".{i}" if isinstance(schedulers, list) else "")
                yield at, sched, "scheduler", _EXTRA_KEYS["scheduler"], None


def _loader_sections(where: str, loader: Mapping[str, Any]) -> Iterator[tuple]:
    own = {"dataset", "sampler", "batch_sampler", "collate_fn", "worker_init_fn"}
    yield where, {k: v for k, v in loader.items() if k not in own}, "loader", set(), None
    dataset, at = loader.get("dataset"), f"{where}.dataset"
    while isinstance(dataset, Mapping):  # wrappers (GuardedDataset in a run's config copy)
        yield at, dataset, "dataset", set(), None
        for i, step in enumerate(dataset.get("pipeline") or []):
            if isinstance(step, Mapping):
                yield f"{at}.pipeline.{i}", step, "transform", set(), None
        dataset, at = dataset.get("dataset"), f"{at}.dataset"
    if isinstance(loader.get("sampler"), Mapping):
        yield f"{where}.sampler", loader["sampler"], "sampler", set(), None


def _key_problems(cfg: Any, mode: str) -> list[str]:
    from torch.utils.data import DataLoader

    scope = cfg.get("default_scope") or registry.SCOPE
    if scope != registry.SCOPE:
        return []  # another package's registries (mmseg ...): its own checks apply
    problems = []
    for where, spec, kind, extra, default in _sections(cfg, mode):
        if kind == "loader":
            problems += _check_typed(where, {**spec, "type": DataLoader}, kind, scope)
            continue
        if "type" not in spec and default is None:
            continue
        problems += _check_typed(where, spec, kind, scope, extra, default)
    return problems


# ----------------------------------------------------------------------------- values

def _walk(node: Any, where: str) -> Iterator[tuple[str, str, Any]]:
    """(dotted key, last key, value) of every entry under ``node``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            at = f"{where}.{key}" if where else str(key)
            yield at, str(key), value
            yield from _walk(value, at)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}.{i}")


def _variant_problems(cfg: Any) -> list[str]:
    problems = []
    for where, key, value in _walk(cfg.get("model") or {}, "model"):
        if key not in ("name", "model") or not isinstance(value, str):
            continue
        in_backbone = where.split(".")[-2] in ("backbone", "student")
        if value in VARIANTS or value.startswith("timm/") or not (
                value.startswith("PE-") or in_backbone):
            continue
        near = _near(value, list(VARIANTS), 0.6)
        hint = f"did you mean {near[0]}?" if near else "pe-dense info lists the variants"
        problems.append(f"{where}={value!r}: no such PE variant; {hint}")
    return problems


_PATH_KEY = re.compile(r"(^|_)(file|dir|root|roots|prefix)$")


def _path_problems(cfg: Any, mode: str) -> list[str]:
    problems = []
    splits = ("train", "val") if mode == "train" else ("test",)
    sections = [f"{s}_dataloader" for s in splits]
    sections += [f"{s}_evaluator" for s in splits if s != "train"]
    for section in sections:
        if section.startswith("val") and not cfg.get("val_cfg"):
            continue
        for where, key, value in _walk(cfg.get(section) or {}, section):
            if not _PATH_KEY.search(key) or "cache" in key or "out" in key:
                continue
            for path in [value] if isinstance(value, str) else (
                    value if isinstance(value, list) else []):
                if isinstance(path, str) and path and not Path(path).exists():
                    start = "" if Path(path).is_absolute() else \
                        f" (relative paths start at {Path.cwd()})"
                    problems.append(f"{where}: {path} does not exist{start}")
    return problems


def _weight_problems(cfg: Any, mode: str) -> list[str]:
    problems = []
    for where, key, value in _walk(cfg.get("model") or {}, "model"):
        if key == "weights" and isinstance(value, str) and not value.startswith("hf://"):
            problem = check_weights_file(value)
            if problem:
                problems.append(f"{where}: {problem}")
    load_from = cfg.get("load_from")
    if mode == "train" and isinstance(load_from, str) and not cfg.get("resume"):
        problem = check_weights_file(load_from)
        if problem:
            problems.append(f"load_from: {problem}")
    return problems


def check_run(cfg: Any, mode: str = "train") -> None:
    """Check ``cfg`` for a ``"train"`` or ``"test"`` run; one :class:`ConfigError` listing
    every problem (at most :data:`MAX_PROBLEMS`, then a count)."""
    problems = (_key_problems(cfg, mode) + _variant_problems(cfg) + _path_problems(cfg, mode)
                + _weight_problems(cfg, mode))
    if not problems:
        return
    problems = list(dict.fromkeys(problems))
    name = cfg.filename or "the config"
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    lines = [f"{name}: {count}, nothing was run:"]
    lines += [f"  {p}" for p in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        lines.append(f"  ... and {len(problems) - MAX_PROBLEMS} more")
    lines.append("fix: edit the config, or override with --cfg-options KEY=VALUE")
    raise ConfigError("\n".join(lines))


def check_option_types(cfg: Any, options: Mapping[str, Any]) -> None:
    """``--cfg-options`` values whose type differs from the value they replace (a string for
    an integer ...): a :class:`ConfigError` naming the key, the value and the expected type."""
    for dotted, new in options.items():
        old: Any = cfg._cfg_dict if hasattr(cfg, "_cfg_dict") else cfg
        for part in dotted.split("."):
            if isinstance(old, Mapping) and part in old:
                old = old[part]
            elif isinstance(old, (list, tuple)) and part.isdigit() and int(part) < len(old):
                old = old[int(part)]
            else:
                old = None
                break
        if old is None or new is None:
            continue
        kinds = [("an integer", int), ("a number", float), ("True or False", bool)]
        for text, kind in ((t, k) for t, k in kinds if type(old) is k):
            fits = (isinstance(new, bool) if kind is bool else
                    isinstance(new, (int, float)) and not isinstance(new, bool)
                    if kind is float else isinstance(new, int) and not isinstance(new, bool))
            if not fits:
                raise ConfigError(f"--cfg-options {dotted}={new!r}: expected {text} (the config "
                                  f"has {old!r})")


# ----------------------------------------------------------------------------- build errors

_UNEXPECTED = re.compile(r"(?P<owner>[\w.]+)\(\) got an unexpected keyword argument "
                         r"'(?P<key>\w+)'")


def explain_type_error(exc: TypeError, model_cfg: Any) -> str | None:
    """``"model.rpn.conv_dept: not an option of RPNHead; did you mean conv_depth?"`` for a
    TypeError raised while building the model from ``model_cfg``; None if not such an error."""
    match = _UNEXPECTED.search(str(exc))
    if match is None:
        return None
    key, owner = match.group("key"), match.group("owner").removesuffix(".__init__")
    places = [where for where, last, _ in _walk(model_cfg or {}, "model") if last == key]
    target = _find_class(exc, owner.split(".")[0])
    options = sorted(set(accepted(target)[0]) - {"self"}) if target is not None else []
    near = _near(key, options)
    hint = (f"did you mean {near[0]}?" if near else
            f"{owner.split('.')[0]} takes {', '.join(options)[:200]}" if options else "")
    where = " or ".join(places) or f"model (key {key!r})"
    return f"{where}: not an option of {owner.split('.')[0]}" + (f"; {hint}" if hint else "")


def _find_class(exc: BaseException, name: str) -> Any:
    tb = exc.__traceback__
    found = None
    while tb is not None:
        candidate = tb.tb_frame.f_globals.get(name)
        if candidate is not None and callable(candidate):
            found = candidate
        tb = tb.tb_next
    return found

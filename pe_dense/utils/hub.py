"""Hugging Face Hub access that fails fast and says what to do without a network.

Every hub call in pe_dense (``hf://`` backbone weights, model repos of trained task models)
goes through :func:`download_file` / :func:`download_repo`. Before the first request they check
``HF_HUB_OFFLINE`` and whether the hub's host answers at all (a DNS lookup and a TCP connect,
at most :data:`PROBE_TIMEOUT` seconds); without a network they use the local cache or raise
:class:`HubUnavailable` at once, instead of ``huggingface_hub``'s retries (about 25 s for one
file). The message says how to use a local copy instead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from urllib.parse import urlparse

__all__ = ["HubUnavailable", "PROBE_TIMEOUT", "hub_offline", "hub_unreachable", "download_file",
           "download_repo", "parse_hf_spec"]

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 1.5  # seconds for the DNS lookup + TCP connect to the hub's host
_PROBE_TTL = 30.0  # seconds a probe result is reused
_probe_cache: dict[str, tuple[float, str | None]] = {}
_probe_lock = threading.Lock()


class HubUnavailable(RuntimeError):
    """The hub cannot be reached (offline mode or no network) and the file is not cached."""


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for no network access (read at call time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _probe(host: str, port: int) -> str | None:
    """None when ``host:port`` accepts a TCP connection, else the reason."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached (``HF_HUB_OFFLINE=1``, or the connection to its host
    failed within :data:`PROBE_TIMEOUT` s), or None when it answers. Results are reused for
    :data:`_PROBE_TTL` seconds."""
    if hub_offline():
        return "HF_HUB_OFFLINE=1"
    url = urlparse(_endpoint())
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http"
                                                                  else 443)
    key = f"{host}:{port}"
    with _probe_lock:
        cached = _probe_cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < _PROBE_TTL:
            return cached[1]
    result: list[str | None] = ["no answer within the timeout"]

    def run() -> None:  # getaddrinfo has no timeout of its own: bound it with a thread
        result[0] = _probe(host, port)

    worker = threading.Thread(target=run, daemon=True, name="hub-probe")
    worker.start()
    worker.join(PROBE_TIMEOUT + 0.2)
    reason = None if result[0] is None else f"no network: {key} unreachable ({result[0]})"
    with _probe_lock:
        _probe_cache[key] = (time.monotonic(), reason)
    return reason


def parse_hf_spec(spec: str) -> tuple[str, str | None]:
    """``hf://owner/repo[@revision]`` or ``owner/repo[@revision]`` -> (repo id, revision)."""
    text = spec[len("hf://"):] if spec.startswith("hf://") else spec
    repo, _, revision = text.partition("@")
    repo = repo.strip("/")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ValueError(f"{spec}: expected hf://owner/repo (optionally @revision)")
    return repo, revision or None


def _local_copy_advice(repo: str, filename: str | None) -> str:
    if filename:
        return (f"on a connected machine run `hf download {repo} {filename} --local-dir DIR`, "
                f"copy DIR/{filename} here and pass its local path")
    return (f"on a connected machine run `hf download {repo} --local-dir DIR`, copy DIR here "
            f"and pass DIR (a folder with config.py and model.safetensors) instead of hf://{repo}")


def _fetch(repo: str, filename: str | None, revision: str | None, what: str) -> str:
    """hf_hub_download (``filename``) or snapshot_download (None), fast-failing offline."""
    import huggingface_hub as hub
    from huggingface_hub import errors

    def call(local_only: bool) -> str:
        kwargs = {"revision": revision, "local_files_only": local_only, "etag_timeout": 5}
        if filename:
            return hub.hf_hub_download(repo_id=repo, filename=filename, **kwargs)
        return hub.snapshot_download(repo_id=repo, **kwargs)

    reason = hub_unreachable()
    try:
        if reason is not None:
            path = call(local_only=True)
            log.info("%s: %s, using the cached copy %s", what, reason, path)
            return path
        return call(local_only=False)
    except errors.GatedRepoError as exc:
        raise ValueError(f"{what}: repository {repo} is gated: accept its terms on the hub "
                         "and log in with `hf auth login`") from exc
    except errors.RepositoryNotFoundError as exc:
        raise ValueError(f"{what}: no repository {repo} on the hub (or it is private: log in "
                         "with `hf auth login`)") from exc
    except errors.RevisionNotFoundError as exc:
        raise ValueError(f"{what}: repository {repo} has no revision {revision}") from exc
    except errors.RemoteEntryNotFoundError as exc:
        raise ValueError(f"{what}: repository {repo} has no file {filename}") from exc
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled) as exc:
        why = reason or f"the hub did not answer ({type(exc).__name__})"
        raise HubUnavailable(
            f"cannot fetch {what}: {why}, and it is not in the local cache. To use a local "
            f"copy: {_local_copy_advice(repo, filename)}") from exc
    except OSError as exc:  # HTTP errors, connection resets, a full disk ...
        raise RuntimeError(f"could not fetch {what} ({type(exc).__name__}: {exc})") from exc


def download_file(repo: str, filename: str, revision: str | None = None) -> str:
    """Local path of ``filename`` in hub repository ``repo`` (downloaded or cached).
    Offline or without a network: the cached copy, else :class:`HubUnavailable` within about
    :data:`PROBE_TIMEOUT` seconds."""
    return _fetch(repo, filename, revision, f"{filename} from hf://{repo}")


def download_repo(repo: str, revision: str | None = None) -> str:
    """Local folder of hub repository ``repo`` (downloaded or cached); offline as
    :func:`download_file`."""
    return _fetch(repo, None, revision, f"hf://{repo}")

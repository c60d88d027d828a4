"""A training set that reports (or skips) samples it cannot read, by path, not by traceback.

:class:`SampleGuard` wraps any dataset. A sample whose reading raises ``OSError`` or
``ValueError`` (a corrupt or truncated image, a missing file) stops training with a
:class:`BadSampleError` naming the sample and the fix; with ``skip_bad_samples=True`` the next
readable sample stands in, the skip is logged with the file's path and counted (``skipped``,
shared with DataLoader worker processes). The message stays short when the error crosses a
worker process boundary (PyTorch re-raises it with the worker's traceback in the text).
"""

from __future__ import annotations

import logging
import multiprocessing
from typing import Any

from torch.utils.data import Dataset

__all__ = ["SampleGuard", "BadSampleError"]

log = logging.getLogger(__name__)

_FIX = ("replace or remove the file, or set train_cfg.skip_bad_samples=True to skip unreadable "
        "samples (counted in the run's summary)")


class BadSampleError(RuntimeError):
    """A training sample that cannot be read; the message names it and the fix."""

    def __init__(self, message: str) -> None:
        marker = f"{type(self).__name__}: "
        if "Traceback (most recent call last)" in message and marker in message:
            message = message.rsplit(marker, 1)[1].strip()  # re-raised from a worker
        super().__init__(message)


class SampleGuard(Dataset):
    """``dataset`` with unreadable samples reported (default) or skipped and counted.

    ``max_tries``: consecutive unreadable samples tolerated when skipping before giving up.
    Attributes of ``dataset`` (``metainfo`` ...) are reachable through the guard.
    """

    def __init__(self, dataset: Any, skip_bad_samples: bool = False, max_tries: int = 16) -> None:
        self.dataset = dataset
        self.skip_bad_samples = skip_bad_samples
        self.max_tries = max_tries
        self._skipped = multiprocessing.get_context().Value("i", 0)

    @property
    def skipped(self) -> int:
        """Samples skipped so far (in every worker process)."""
        return int(self._skipped.value)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "_skipped") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> Any:
        n = len(self.dataset)
        for attempt in range(min(self.max_tries, n)):
            i = (index + attempt) % n
            try:
                return self.dataset[i]
            except (OSError, ValueError) as exc:
                reason = _root_cause(exc)
                if not self.skip_bad_samples:
                    raise BadSampleError(f"training sample {i} cannot be read: {reason}\n"
                                         f"fix: {_FIX}") from None
                with self._skipped.get_lock():
                    self._skipped.value += 1
                log.warning("skipped training sample %d (skip_bad_samples): %s", i, reason)
        raise BadSampleError(f"{min(self.max_tries, n)} training samples in a row from index "
                             f"{index} cannot be read (skip_bad_samples); check the data set")


def _root_cause(exc: BaseException) -> str:
    """The message of the innermost error that still names a file (datasets wrap the image
    reader's error, which wraps the decoder's), without a trailing fix of its own."""
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 8:
        chain.append(chain[-1].__cause__)
    named = [str(e) for e in chain if "/" in str(e) or "\\" in str(e)]
    return (named[-1] if named else str(exc)).split("; replace or remove", 1)[0]

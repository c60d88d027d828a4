"""Demo errors, each with the process exit code the CLI returns for it."""

from __future__ import annotations

__all__ = [
    "DemoError", "SourceNotFound", "SourceUnreadable", "StreamDropped", "NoDisplay",
    "ModelMismatch", "EXIT_CODES",
]


class DemoError(RuntimeError):
    """Base class: ``exit_code`` is what ``pe-dense demo`` returns."""

    exit_code = 1


class SourceNotFound(DemoError):
    """Camera index, file, folder or URL that does not exist."""

    exit_code = 3


class SourceUnreadable(DemoError):
    """A source that exists but cannot be decoded (codec, corrupt file, not an image)."""

    exit_code = 4


class StreamDropped(DemoError):
    """A live camera or stream that stopped delivering frames."""

    exit_code = 5


class NoDisplay(DemoError):
    """A window was asked for where no display is available."""

    exit_code = 6


class ModelMismatch(DemoError):
    """A checkpoint that does not match the config or model, or a missing head."""

    exit_code = 7


EXIT_CODES = {cls.__name__: cls.exit_code for cls in
              (SourceNotFound, SourceUnreadable, StreamDropped, NoDisplay, ModelMismatch)}

"""Demo errors, each with the process exit code the CLI returns for it."""

from __future__ import annotations

__all__ = [
    "DemoError", "SourceNotFound", "SourceUnreadable", "StreamDropped", "NoDisplay",
    "ModelMismatch", "EXIT_CODES",
]


class DemoError(RuntimeError):
    """Base class: ``exit_code`` is what ``pe-dense demo`` returns (1 unless a subclass says
    otherwise with ``class X(DemoError, exit_code=N)``)."""

    exit_code = 1

    def __init_subclass__(cls, exit_code: int = 1, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.exit_code = exit_code


class SourceNotFound(DemoError, exit_code=3):
    """Camera index, file, folder or URL that does not exist."""


class SourceUnreadable(DemoError, exit_code=4):
    """A source that exists but cannot be decoded (codec, corrupt file, not an image)."""


class StreamDropped(DemoError, exit_code=5):
    """A live camera or stream that stopped delivering frames."""


class NoDisplay(DemoError, exit_code=6):
    """A window was asked for where no display is available."""


class ModelMismatch(DemoError, exit_code=7):
    """A checkpoint that does not match the config or model, or a missing head."""


EXIT_CODES = {cls.__name__: cls.exit_code for cls in
              (SourceNotFound, SourceUnreadable, StreamDropped, NoDisplay, ModelMismatch)}

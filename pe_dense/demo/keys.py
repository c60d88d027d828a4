"""Keyboard handling: a key code -> an :class:`Action`, independent of any window."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MODES", "TOUR_MODES", "tour_modes", "all_modes", "Action", "handle_key",
           "HELP_LINE"]


def tour_modes() -> tuple[str, ...]:
    """The mode tour (m key, --cycle-every): features, the mode of every registered task that
    can be drawn (depth, seg, det, then tasks registered by plug-ins), track."""
    from pe_dense.tasks.description import list_tasks

    return ("features", *(d.mode for d in list_tasks() if d.draw is not None), "track")


def all_modes() -> tuple[str, ...]:
    """Every mode: the tour, and "text" (which joins the tour when the demo has prompts)."""
    return (*tour_modes(), "text")


# The built-in modes (a plug-in task's mode is in tour_modes() / all_modes() once registered).
TOUR_MODES = ("features", "depth", "seg", "det", "track")
MODES = (*TOUR_MODES, "text")

_KEYS = {
    ord("q"): ("quit", None), 27: ("quit", None),  # Esc
    ord(" "): ("pause", None), ord("p"): ("pause", None),
    ord("c"): ("snapshot", None),
    ord("m"): ("next_mode", None), 9: ("next_mode", None),  # Tab
    ord("r"): ("reset", None),
    ord("h"): ("toggle_hud", None),
    ord("f"): ("mode", "features"), ord("d"): ("mode", "depth"), ord("s"): ("mode", "seg"),
    ord("e"): ("mode", "det"), ord("t"): ("mode", "track"), ord("x"): ("mode", "text"),
}

HELP_LINE = ("1-6/f d s e t x: mode  m: next  space: pause  c: snapshot  r: reset  h: HUD  q: quit"
             "  (track: drag a box)")


@dataclass(frozen=True)
class Action:
    """What a key asks for: ``kind`` in quit, pause, snapshot, next_mode, reset, toggle_hud,
    mode (then ``mode`` names it)."""

    kind: str
    mode: str | None = None


def handle_key(key: int) -> Action | None:
    """Map a ``cv2.waitKey`` code (-1 when no key) to an Action, or None for other keys.
    Upper-case letters act like lower-case ones."""
    if key is None or key < 0:
        return None
    key &= 0xFF
    if ord("A") <= key <= ord("Z"):
        key += 32
    found = _KEYS.get(key)
    if found is None and ord("1") <= key <= ord("9"):  # digits: the modes in order
        modes = all_modes()
        found = ("mode", modes[key - ord("1")]) if key - ord("1") < len(modes) else None
    return Action(*found) if found else None


def next_mode(current: str, available: tuple[str, ...] | None = None) -> str:
    """The mode after ``current`` in ``available`` (default :func:`all_modes`; wrapping)."""
    available = available or all_modes()
    if current not in available:
        return available[0]
    return available[(available.index(current) + 1) % len(available)]

#!/usr/bin/env python
"""Webcam demo, a thin equivalent of ``pe-dense demo`` (same options).

    python demo/webcam.py                      # camera 0, or the built-in clip without one
    python demo/webcam.py --source video.mp4 --mode depth
    python demo/webcam.py --headless --output outputs/demo.mp4

All camera and window code lives in :mod:`pe_dense.demo`; see ``pe-dense demo --help``.
"""

from __future__ import annotations

import sys

from pe_dense.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))

"""The ``pe-dense demo`` application: live PE-Spatial features, depth, segmentation, detections
and tracking from a camera, video, folder of frames, stream URL or the built-in sample clip.

All camera and window code lives in this package (OpenCV is imported only where used).
Entry points: ``pe-dense demo`` (:mod:`pe_dense.cli.demo`) and ``demo/webcam.py``.
"""

from pe_dense.demo.errors import DemoError

__all__ = ["DemoError"]

"""Monocular depth on PE: ``model`` (DepthEstimator), ``heads`` (DPT, DINOv2's linear bins),
``losses`` (SiLog, gradient loss) in metres."""

"""Video object tracking on PE features: online label-propagation ``Tracker`` (see
``pe_dense.tracking.tracker`` for the API), multi-layer sweeps and the propagation maths."""

from pe_dense.tracking.tracker import LayerSweepTracker, PropagationState, Tracker, masks_to_labels

__all__ = ["Tracker", "LayerSweepTracker", "PropagationState", "masks_to_labels"]

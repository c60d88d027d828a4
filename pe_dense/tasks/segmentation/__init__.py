"""Semantic segmentation on PE: ``model`` (Segmentor), ``heads`` (linear, linear + conv, UPerNet),
``losses`` (pixel cross-entropy with an ignore index)."""

"""Mask R-CNN on a PE feature pyramid: ``model`` (MaskRCNN and its stages), ``heads`` (ViTDet's
RPN, box and mask head choices on torchvision's detection modules)."""

"""Evaluation metrics: COCO, mIoU, depth errors and DAVIS J&F."""

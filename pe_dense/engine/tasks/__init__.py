"""mmengine glue for each pe_dense task: registrations of the library classes, BaseModel
adapters (:func:`pe_dense.engine.adapters.engine_model`) and BaseMetric wrappers.

- :mod:`pe_dense.engine.tasks.detection`: Mask R-CNN, COCO dataset, transforms, collate, metric
- :mod:`pe_dense.engine.tasks.segmentation`: Segmentor, segmentation datasets, collate, mIoU
- :mod:`pe_dense.engine.tasks.depth`: DepthEstimator, NYU datasets, collate, depth metric
- :mod:`pe_dense.engine.tasks.distill`: DistillModel, distillation data, metric, hooks
- :mod:`pe_dense.engine.tasks.open_vocab`: BridgeSegmenter, COCO-as-semantic dataset, bridge hook
- :mod:`pe_dense.engine.tasks.contrastive`: ContrastiveCLIP, captioned images, retrieval, export

The registries of :mod:`pe_dense.engine.registry` import these modules on first lookup.
"""

"""Text-prompted prediction on PE: zero-shot classification (``zero_shot``), training-free
open-vocabulary segmentation from PE-Core's CLIP (``dense_clip``: MaskCLIP and self-self
attention recipes), a learned text-to-patch bridge for any PE tower (``bridge``), the prompt
templates and the text-embedding cache (``prompts``, ``text_cache``), the segmenters' shared
stages (``model``) and their scoring against ground-truth label maps (``evaluate``)."""

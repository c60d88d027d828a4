"""Feature pyramids on a backbone (``pyramid``: SimpleFeaturePyramid, MultiLayerPyramid), maps named
``p2``..``p6`` with ``output_shape()``; they check input sizes and never pad."""

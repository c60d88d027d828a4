"""Networks: the PE ViT backbone, pyramids and task heads."""

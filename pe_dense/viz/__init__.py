"""Pictures: ``pca`` (PCA colouring of patch features), ``overlays`` (drawing on images with
numpy + PIL: labels, masks, boxes, depth colours) and ``plots`` (matplotlib figures as PNG)."""

"""Task heads on pyramid features (one family per module)."""

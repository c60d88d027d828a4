"""Datasets, transforms and built-in sample inputs."""

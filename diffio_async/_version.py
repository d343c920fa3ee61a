"""The package version (read by hatchling and sent in identity headers)."""

__version__ = "0.1.0"

"""The package version (read by hatchling and sent in identity headers)."""

__version__ = "0.1.0"

__all__ = ["__version__"]

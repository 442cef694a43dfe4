"""Tessera: an open-source real-time customer profile platform."""

from tessera.errors import TesseraError

__version__ = "0.1.0"

__all__ = ["TesseraError", "__version__"]

"""Tessera: an open-source real-time customer profile platform."""

from tessera.errors import TesseraError
from tessera.platform import Platform, Sandbox
from tessera.settings import Settings

__version__ = "0.1.0"

__all__ = ["Platform", "Sandbox", "Settings", "TesseraError", "__version__"]

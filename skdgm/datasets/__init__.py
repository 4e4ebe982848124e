"""Datasets: the bundled LibreOffice help corpus and a reader for MLDoc files."""

from ._libreoffice import load_libreoffice_help
from ._mldoc import load_mldoc

__all__ = ["load_libreoffice_help", "load_mldoc"]

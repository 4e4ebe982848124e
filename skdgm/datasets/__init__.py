"""Datasets: the bundled LibreOffice help corpus, a reader for MLDoc files, and draws."""

from ._draws import draw_labelled
from ._libreoffice import load_libreoffice_help
from ._mldoc import load_mldoc

__all__ = ["draw_labelled", "load_libreoffice_help", "load_mldoc"]

"""Readers for the official dataset layouts; each turns a release into the manifest/segments contracts."""

from miga.datasets import imigue, smg
from miga.datasets.csvtable import DatasetFormatError

READERS = {"imigue": imigue, "smg": smg}

__all__ = ["READERS", "DatasetFormatError", "imigue", "smg"]

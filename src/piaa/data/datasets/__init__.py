"""Loaders for the public personalized-aesthetics benchmarks: REAL-CUR, FLICKR-AES and PARA.

Each loader turns a benchmark's own files into one :class:`RatedAlbum` per person (their photos and
their ratings on piaa's 1-10 scale), so that evaluation code never needs to know which benchmark it
runs on. None of these data sets ships with piaa; each module (:mod:`.realcur`, :mod:`.flickr_aes`,
:mod:`.para`) documents the layout it reads and how sure we are of it, :mod:`.base` the rules they
share. Fixtures in ``tests/test_datasets.py`` reproduce every layout accepted here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from piaa.data.datasets.base import DatasetError, RatedAlbum, check_images
from piaa.data.datasets.flickr_aes import load_flickr_aes
from piaa.data.datasets.para import load_para
from piaa.data.datasets.realcur import load_realcur
from piaa.registry import Registry

__all__ = [
    "DATASETS",
    "DatasetError",
    "RatedAlbum",
    "check_images",
    "dataset_key",
    "list_datasets",
    "load_dataset",
    "load_flickr_aes",
    "load_para",
    "load_realcur",
]


def dataset_key(name: str) -> str:
    """``"FLICKR-AES"``, ``"flickr_aes"``, ``"flickr aes"`` -> ``"flickraes"``: one spelling per loader."""
    return re.sub(r"[-_\s]", "", name.lower())


LOADERS: Registry[Callable[..., list[RatedAlbum]]] = Registry("dataset", key=dataset_key, error=DatasetError)
"""Personal-rating benchmarks by name (case, ``-``, ``_`` and spaces ignored) -> loader."""
LOADERS.register("realcur", load_realcur)
LOADERS.register("flickr-aes", load_flickr_aes)
LOADERS.register("para", load_para)
DATASETS: tuple[str, ...] = tuple(LOADERS.names())
"""Names :func:`load_dataset` accepts, in their usual spelling."""


def list_datasets() -> list[str]:
    """The benchmark names :func:`load_dataset` accepts, in their usual spelling."""
    return LOADERS.names()


def load_dataset(name: str, **kwargs: Any) -> list[RatedAlbum]:
    """Load a benchmark by name (``"realcur"``, ``"flickr-aes"``, ``"para"``); kwargs go to its loader.

    Raises :class:`DatasetError` (a ``ValueError``) for an unknown name, and whatever the loader raises.
    """
    return LOADERS.get(name)(**kwargs)

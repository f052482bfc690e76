"""Which pair of photos to ask a person about next: ``create_sampler(name, items, ...)``.

``random`` is the paper's choice; ``active`` asks what a cheap linear model of the person's taste is
least sure about. Every sampler implements :class:`PairSampler`.
"""

from __future__ import annotations

from piaa.sampling.base import SAMPLERS, PairSampler, create_sampler, list_samplers, register_sampler
from piaa.sampling.random import RandomSampler  # registered first: the default, the paper's

# isort: split
from piaa.sampling.active import CRITERIA, ActiveSampler
from piaa.sampling.bradley_terry import LinearRanker, fit_ranker
from piaa.sampling.features import album_features, design_matrix, photo_descriptors

__all__ = [
    "SAMPLERS",
    "CRITERIA",
    "ActiveSampler",
    "LinearRanker",
    "PairSampler",
    "RandomSampler",
    "album_features",
    "create_sampler",
    "design_matrix",
    "fit_ranker",
    "list_samplers",
    "photo_descriptors",
    "register_sampler",
]

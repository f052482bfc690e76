"""The paper's pair choice: random unordered pairs of album photos, never the same pair twice."""

from __future__ import annotations

from piaa.sampling.base import PairSampler, register_sampler

__all__ = ["RandomSampler"]


@register_sampler("random")
class RandomSampler(PairSampler):
    """Uniformly random open pairs; which photo comes first is random too, so a page showing them
    left/right is not biased. Same seed, same draws. ``RandomSampler(items, seed=0, seen=pairs)``."""

    def _choose(self, blocked: set[int]) -> tuple[int, int]:
        return self._random_pair(blocked)

"""Held-out agreement with the person by nested cross-validation (piaa.models.agreement)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from piaa.models.agreement import MIN_PAIRS, Agreement, held_out_agreement, wilson
from piaa.models.selection import fit_personal
from piaa.models.train import cached_source
from test_selection import CFG, _generic, _pairs

FAST = dataclasses.replace(CFG, rank_epochs=3)  # the same procedure, fewer epochs


def _distinct(pairs: torch.Tensor) -> torch.Tensor:
    seen, keep = set(), []
    for a, b in pairs.tolist():
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            keep.append((a, b))
    return torch.tensor(keep)


def test_wilson_interval_matches_the_textbook_values():
    lo, hi = wilson(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = wilson(1.0, 10)  # never past 1, and not a zero-width interval at the edge
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-3)
    assert wilson(0.3, 0) == (0.0, 1.0)


@pytest.mark.slow
def test_a_person_the_generic_model_gets_wrong_is_learned_and_measured_on_unseen_pairs():
    head, maps, q = _generic()
    start = copy.deepcopy(head.state_dict())
    stated = _distinct(_pairs(-q, torch.arange(96), torch.Generator().manual_seed(1), 46))
    a = held_out_agreement(head, cached_source(maps), stated, FAST)
    assert a is not None and a.pairs == len(stated) and a.folds == 5  # each judgement asked once
    assert a.generic < 0.35 and a.personal > a.generic + 0.2  # it learned the taste the crowd lacks
    assert a.personal_interval[0] <= a.personal <= a.personal_interval[1]
    assert [p["judgements"] for p in a.curve] == [20, 40, len(stated)]
    assert a.curve[-1]["personal"] == round(a.personal, 4)
    assert all(torch.equal(v, start[k]) for k, v in head.state_dict().items())  # generic left as it was
    again = held_out_agreement(head, cached_source(maps), stated, FAST, curve=False)
    assert again.to_dict() == a.to_dict() | {"curve": []}  # seeded: the page and `piaa personalize` agree
    assert Agreement.from_dict(a.to_dict()).to_dict() == a.to_dict()
    assert "agrees with you" in a.describe() and f"{a.personal:.0%}" in a.describe()


@pytest.mark.slow
def test_coin_flips_are_not_flattered_by_the_selection():
    """A person who answers at random: the selection's winning candidate looks better than chance on
    its own folds (it was picked for that), the nested figure does not."""
    head, maps, _ = _generic()
    gen = torch.Generator().manual_seed(5)
    stated = _distinct(_pairs(torch.rand(96, generator=gen), torch.arange(96), gen, 80))
    honest = held_out_agreement(head, cached_source(maps), stated, FAST, curve=False)
    sel = fit_personal(copy.deepcopy(head), cached_source(maps), stated, len(stated), FAST)
    assert honest is not None and honest.curve == []
    assert abs(honest.personal - 0.5) < 0.15
    assert max(sel.cv_accuracy.values()) >= honest.personal


def test_too_few_judgements_give_no_figure():
    head, maps, q = _generic()
    stated = _distinct(_pairs(q, torch.arange(96), torch.Generator().manual_seed(2), 12))[: MIN_PAIRS - 1]
    assert held_out_agreement(head, cached_source(maps), stated, FAST) is None


def test_profiles_without_the_figure_still_load_and_say_so():
    from piaa.models.profile import load_profile

    assert load_profile("nima-ava").agreement is None  # as every profile saved before this field

"""Personalization that never does harm: the pull toward the generic model is chosen from the pairs."""

from __future__ import annotations

import copy
import functools

import pytest
import torch

from piaa.models.selection import ALPHAS, _training_pairs, fit_personal
from piaa.models.train import TrainConfig, cached_source, fit_generic, new_head
from test_train import _world

CFG = TrainConfig(generic_epochs=30, generic_lr=3e-3, rank_epochs=30, rank_lr=3e-3, batch_size=16, seed=0)


@functools.cache
def _trained():
    maps, target, q = _world(n=96)
    head = new_head((8, 16, 16), CFG)
    fit_generic(head, cached_source(maps), target, CFG)
    return head, maps, q


def _generic():
    """A generic model fitted once, copied for each test."""
    head, maps, q = _trained()
    return copy.deepcopy(head), maps, q


def _scores(head, maps, idx):
    with torch.no_grad():
        return head.eval().score(cached_source(maps)(idx))


def _pairs(order_key, idx, gen, n):
    a = idx[torch.randint(len(idx), (n,), generator=gen)]
    b = idx[torch.randint(len(idx), (n,), generator=gen)]
    keep = a != b
    a, b = a[keep], b[keep]
    first = order_key[a] > order_key[b]
    return torch.stack([torch.where(first, a, b), torch.where(first, b, a)], 1)


def test_pairs_that_teach_something_move_the_model_and_help_on_unseen_photos():
    head, maps, q = _generic()
    taste = -q  # the person likes what the crowd (and the generic model) dislikes
    train, test = torch.arange(0, 64), torch.arange(64, 96)
    pairs = _pairs(taste, train, torch.Generator().manual_seed(1), 80)
    before = _scores(head, maps, test)
    sel = fit_personal(head, cached_source(maps), pairs, len(pairs), CFG)
    assert sel.folds == 5 and sel.alpha > 0 and set(sel.cv_accuracy) == set(ALPHAS)
    assert sel.cv_accuracy[sel.alpha] > sel.cv_accuracy[0.0]
    after = _scores(head, maps, test)
    agree = lambda s: float(torch.corrcoef(torch.stack([s, taste[test]]))[0, 1])  # noqa: E731
    assert agree(after) > agree(before) + 0.3
    assert len(sel.history) == CFG.rank_epochs


@pytest.mark.parametrize("seed", [2, 3, 4, 5])
def test_pairs_that_are_noise_keep_the_generic_model(seed):
    head, maps, q = _generic()
    generic = copy.deepcopy(head)
    gen = torch.Generator().manual_seed(seed)
    pairs = _pairs(-q, torch.arange(0, 64), gen, 60)
    pairs = torch.where((torch.rand(len(pairs), generator=gen) < 0.5)[:, None], pairs.flip(1), pairs)  # coins
    sel = fit_personal(head, cached_source(maps), pairs, len(pairs), CFG)
    assert sel.alpha == 0.0, sel
    test = torch.arange(64, 96)
    torch.testing.assert_close(_scores(head, maps, test), _scores(generic, maps, test))
    unselected = copy.deepcopy(generic)
    off = TrainConfig(**{**CFG.to_dict(), "select": False})
    fit_personal(unselected, cached_source(maps), pairs, len(pairs), off)
    moved = (_scores(unselected, maps, test) - _scores(generic, maps, test)).abs().max()
    assert moved > 0.05  # without the selection, the same pairs would move the model


def test_few_pairs_or_selection_off_is_the_papers_fine_tune():
    head, maps, q = _generic()
    pairs = _pairs(q, torch.arange(0, 64), torch.Generator().manual_seed(3), 5)
    assert fit_personal(head, cached_source(maps), pairs, len(pairs), CFG).folds == 0


def test_held_out_pairs_are_never_restated_by_transitivity():
    stated = torch.tensor([[0, 1], [1, 2], [5, 6]])
    held = torch.tensor([[0, 2]])  # what 0>1, 1>2 would infer
    train = {tuple(p) for p in _training_pairs(stated, held).tolist()}
    assert (0, 2) not in train and (2, 0) not in train
    assert {(0, 1), (1, 2), (5, 6)} <= train


def test_selection_is_deterministic():
    a, maps, q = _generic()
    b = copy.deepcopy(a)
    pairs = _pairs(-q, torch.arange(0, 64), torch.Generator().manual_seed(4), 40)
    sa = fit_personal(a, cached_source(maps), pairs, len(pairs), CFG)
    sb = fit_personal(b, cached_source(maps), pairs, len(pairs), CFG)
    assert sa.alpha == sb.alpha and sa.cv_accuracy == sb.cv_accuracy
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)

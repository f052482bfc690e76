"""Losses against hand-computed values and the paper's gradient formula (eq. 3)."""

from __future__ import annotations

import math

import pytest
import torch

from piaa.models.losses import (
    RANK_LOSSES,
    emd_loss,
    exp_rank_loss,
    get_rank_loss,
    hinge_rank_loss,
    logistic_rank_loss,
    score_from_distribution,
)


def one_hot(bin_1_based: int, k: int = 10) -> torch.Tensor:
    p = torch.zeros(k, dtype=torch.float64)
    p[bin_1_based - 1] = 1.0
    return p


UNIFORM = torch.full((10,), 0.1, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------- scores


def test_score_from_distribution_one_hot_and_uniform() -> None:
    for b in range(1, 11):
        assert score_from_distribution(one_hot(b)).item() == pytest.approx(b)
    assert score_from_distribution(UNIFORM).item() == pytest.approx(5.5)


def test_score_from_distribution_batched() -> None:
    p = torch.stack([one_hot(1), one_hot(10), UNIFORM])
    assert score_from_distribution(p).tolist() == pytest.approx([1.0, 10.0, 5.5])


# ------------------------------------------------------------------------------------------------- EMD


def test_emd_identical_is_exactly_zero_with_finite_zero_gradient() -> None:
    logits = torch.randn(4, 10, dtype=torch.float64, requires_grad=True)
    p = torch.softmax(logits, dim=-1)
    loss = emd_loss(p.detach().clone(), p)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert torch.count_nonzero(logits.grad) == 0


def test_emd_extremes() -> None:
    # CDF of bin 1 is 1 everywhere; CDF of bin 10 is 0 for j=1..9 and 1 at j=10:
    # 9 differences of 1 -> (9/10)^(1/2) for r=2 and 9/10 for r=1.
    assert emd_loss(one_hot(1), one_hot(10)).item() == pytest.approx(math.sqrt(0.9))
    assert emd_loss(one_hot(1), one_hot(10), r=1).item() == pytest.approx(0.9)
    # symmetric
    assert emd_loss(one_hot(10), one_hot(1)).item() == pytest.approx(math.sqrt(0.9))


def test_emd_hand_computed_shift() -> None:
    # true = [.5, .5, 0...] -> CDF [.5, 1, 1, ...]; pred = [0, .5, .5, 0...] -> CDF [0, .5, 1, ...]
    # |diff| = [.5, .5, 0 x 8]; r=2: sqrt((.25 + .25) / 10) = sqrt(.05); r=1: (.5 + .5) / 10 = .1
    t = torch.tensor([0.5, 0.5] + [0.0] * 8, dtype=torch.float64)
    p = torch.tensor([0.0, 0.5, 0.5] + [0.0] * 7, dtype=torch.float64)
    assert emd_loss(t, p).item() == pytest.approx(math.sqrt(0.05))
    assert emd_loss(t, p, r=1).item() == pytest.approx(0.1)


def test_emd_hand_computed_one_hot_vs_uniform() -> None:
    # true = one-hot bin 3 -> CDF [0, 0, 1, 1, ..., 1]; pred uniform -> CDF [.1, .2, ..., 1.0]
    # diff = [-.1, -.2, .7, .6, .5, .4, .3, .2, .1, 0]
    # r=2: squares sum to .01+.04+.49+.36+.25+.16+.09+.04+.01 = 1.45 -> sqrt(1.45 / 10) = sqrt(.145)
    # r=1: abs sum 3.1 -> .31
    assert emd_loss(one_hot(3), UNIFORM).item() == pytest.approx(math.sqrt(0.145))
    assert emd_loss(one_hot(3), UNIFORM, r=1).item() == pytest.approx(0.31)


def test_emd_is_batch_mean() -> None:
    t = torch.stack([one_hot(1), one_hot(3), UNIFORM])
    p = torch.stack([one_hot(10), UNIFORM, UNIFORM])
    expected = (math.sqrt(0.9) + math.sqrt(0.145) + 0.0) / 3
    assert emd_loss(t, p).item() == pytest.approx(expected)


def test_emd_gradient_finite_for_r1_and_partial_batch_zero() -> None:
    logits = torch.randn(2, 10, dtype=torch.float64, requires_grad=True)
    p = torch.softmax(logits, dim=-1)
    target = torch.stack([p[0].detach(), one_hot(7)])  # first row identical, second not
    for r in (1.0, 2.0):
        logits.grad = None
        emd_loss(target, torch.softmax(logits, dim=-1), r=r).backward()
        assert logits.grad is not None and torch.isfinite(logits.grad).all()
        assert torch.count_nonzero(logits.grad[0]) == 0
        assert torch.count_nonzero(logits.grad[1]) > 0


def test_emd_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        emd_loss(torch.zeros(2, 10), torch.zeros(2, 9))
    with pytest.raises(ValueError, match="r must be"):
        emd_loss(UNIFORM, UNIFORM, r=0.5)


# ------------------------------------------------------------------------------------------------ hinge


def test_hinge_values() -> None:
    t = torch.tensor
    # satisfied with room to spare: 0.9 - 0.5 > 0.1
    assert hinge_rank_loss(t([0.9]), t([0.5])).item() == 0.0
    # satisfied but inside the margin: 0.5 - 0.55 + 0.1 = 0.05
    assert hinge_rank_loss(t([0.55]), t([0.5])).item() == pytest.approx(0.05)
    # violated: 0.8 - 0.3 + 0.1 = 0.6
    assert hinge_rank_loss(t([0.3]), t([0.8])).item() == pytest.approx(0.6)
    # mean over pairs: (0 + 0.6) / 2, custom margin: 0.8 - 0.3 + 1 = 1.5
    assert hinge_rank_loss(t([0.9, 0.3]), t([0.5, 0.8])).item() == pytest.approx(0.3)
    assert hinge_rank_loss(t([0.3]), t([0.8]), margin=1.0).item() == pytest.approx(1.5)


def test_rank_loss_weights_multiply_before_mean() -> None:
    s1, s2 = torch.tensor([0.3, 0.3]), torch.tensor([0.8, 0.8])
    w = torch.tensor([1.0, 0.5])
    assert hinge_rank_loss(s1, s2, weight=w).item() == pytest.approx((0.6 + 0.3) / 2)
    assert hinge_rank_loss(s1, s2, weight=torch.ones(2)).item() == pytest.approx(0.6)
    with pytest.raises(ValueError, match="weight"):
        hinge_rank_loss(s1, s2, weight=torch.ones(3))
    with pytest.raises(ValueError, match="shape"):
        hinge_rank_loss(s1, torch.zeros(3))


def test_rank_loss_empty_batch_is_zero_and_differentiable() -> None:
    s = torch.zeros(0, requires_grad=True)
    for fn in RANK_LOSSES.values():
        loss = fn(s, s.detach())
        assert loss.item() == 0.0
        loss.backward()


class TinyNet(torch.nn.Module):
    """A small nonlinear scorer f(x; theta) so eq. 3 is checked on more than one parameter tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(5, 4).double()
        self.out = torch.nn.Linear(4, 1).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x))).squeeze(-1)


def _grads(net: torch.nn.Module, value: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(value, list(net.parameters()), allow_unused=False))


def test_hinge_gradient_matches_eq3() -> None:
    torch.manual_seed(0)
    net = TinyNet()
    checked = {"violated": 0, "satisfied": 0}
    for _ in range(40):
        x1, x2 = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
        f1, f2 = net(x1), net(x2)
        loss = hinge_rank_loss(f1.unsqueeze(0), f2.unsqueeze(0), margin=0.1)
        got = _grads(net, loss)
        if (f2 - f1 + 0.1).item() <= 0:
            checked["satisfied"] += 1
            for g in got:
                assert torch.count_nonzero(g) == 0
        else:
            checked["violated"] += 1
            # eq. 3: grad f(x2) - grad f(x1), each computed on its own
            expected = [b - a for a, b in zip(_grads(net, net(x1)), _grads(net, net(x2)), strict=True)]
            for g, e in zip(got, expected, strict=True):
                torch.testing.assert_close(g, e)
    assert checked["violated"] > 0 and checked["satisfied"] > 0


def test_hinge_gradient_linear_model_and_boundary() -> None:
    # f(x) = w . x, so grad f(x) = x and eq. 3 gives x2 - x1 when violated.
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    x1 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # f = 1
    x2 = torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)  # f = 2 -> violated
    (g,) = torch.autograd.grad(hinge_rank_loss((w @ x1)[None], (w @ x2)[None]), w)
    torch.testing.assert_close(g, x2 - x1)
    # exactly on the boundary: f2 - f1 + margin == 0 -> eq. 3 says zero gradient (0.25 - 0.5 + 0.25)
    s1 = torch.tensor([0.5], requires_grad=True)
    s2 = torch.tensor([0.25], requires_grad=True)
    hinge_rank_loss(s1, s2, margin=0.25).backward()
    assert s1.grad is not None and s2.grad is not None
    assert s1.grad.item() == 0.0 and s2.grad.item() == 0.0


# ------------------------------------------------------------------------------------- exp / logistic


def test_exp_and_logistic_values() -> None:
    t = torch.tensor
    assert exp_rank_loss(t([2.0]), t([1.0])).item() == pytest.approx(math.exp(-1))
    assert exp_rank_loss(t([1.0]), t([1.0])).item() == pytest.approx(1.0)
    assert exp_rank_loss(t([1.0, 2.0]), t([3.0, 2.0])).item() == pytest.approx((math.exp(2) + 1) / 2)
    assert logistic_rank_loss(t([1.0]), t([1.0])).item() == pytest.approx(math.log(2))
    assert logistic_rank_loss(t([3.0]), t([1.0])).item() == pytest.approx(math.log1p(math.exp(-2)))
    assert logistic_rank_loss(t([1.0]), t([3.0])).item() == pytest.approx(math.log1p(math.exp(2)))


def test_logistic_is_stable_for_large_differences() -> None:
    s_pref = torch.tensor([1000.0, -1000.0], requires_grad=True)
    s_other = torch.tensor([-1000.0, 1000.0])
    per_pair = [logistic_rank_loss(s_pref[i : i + 1], s_other[i : i + 1]).item() for i in range(2)]
    assert per_pair[0] == pytest.approx(0.0, abs=1e-12)
    assert per_pair[1] == pytest.approx(2000.0)
    loss = logistic_rank_loss(s_pref, s_other)
    assert torch.isfinite(loss)
    loss.backward()
    assert s_pref.grad is not None and torch.isfinite(s_pref.grad).all()
    # d loss / d s_pref = -sigmoid(s_other - s_pref) / n: ~0 for the satisfied pair, -1/2 for the violated
    torch.testing.assert_close(s_pref.grad, torch.tensor([0.0, -0.5]))


def test_get_rank_loss() -> None:
    assert set(RANK_LOSSES) == {"hinge", "exp", "logistic"}
    assert get_rank_loss("hinge") is hinge_rank_loss
    assert get_rank_loss("exp") is exp_rank_loss
    assert get_rank_loss("logistic") is logistic_rank_loss
    with pytest.raises(ValueError, match="unknown rank loss .ranknet.; choose one of: hinge, exp, logistic"):
        get_rank_loss("ranknet")

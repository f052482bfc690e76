import torch

from piaa.backbones import FeatureMaps
from piaa.models.losses import emd_loss, score_from_distribution
from piaa.models.train import TrainConfig, cached_source, fit_generic, fit_ranking, new_head


def _world(n=64, seed=0):
    """Maps whose first channel carries a 'quality' signal that both the crowd and the person follow."""
    g = torch.Generator().manual_seed(seed)
    q = torch.rand(n, generator=g)
    z1 = torch.randn(n, 8, 4, 4, generator=g) * 0.1
    z1[:, 0] += q[:, None, None] * 3
    z2 = torch.rand(n, 16, 2, 2, generator=g)
    z2[:, 1] += q[:, None, None] * 2
    z3 = z2.mean((2, 3), keepdim=True)
    stats = torch.randn(n, 6, generator=g)
    bins = torch.arange(1, 11).float()
    target = torch.softmax(-((bins[None] - (2 + 6 * q[:, None])) ** 2) / 2, dim=1)
    return FeatureMaps(z1.half(), z2.half(), z3.half(), z3.flatten(1), stats), target, q


def test_generic_regression_lowers_emd():
    maps, target, _ = _world()
    cfg = TrainConfig(generic_epochs=30, generic_lr=3e-3, batch_size=16, seed=0)
    head = new_head((8, 16, 16), cfg)
    src = cached_source(maps)
    idx = torch.arange(len(target))
    with torch.no_grad():
        before = float(emd_loss(target, head.eval().distribution(src(idx))))
    hist = fit_generic(head, src, target, cfg)
    with torch.no_grad():
        after = float(emd_loss(target, head.distribution(src(idx))))
    assert len(hist) == 30
    assert after < 0.6 * before


def test_ranking_learns_the_stated_order_with_every_loss():
    maps, _, q = _world()
    pairs = torch.tensor(
        [(a, b) if q[a] > q[b] else (b, a) for a, b in torch.randint(0, 64, (200, 2)).tolist() if a != b]
    )
    src = cached_source(maps)
    for loss in ("hinge", "exp", "logistic"):
        cfg = TrainConfig(rank_epochs=30, rank_loss=loss, rank_lr=3e-3)
        head = new_head((8, 16, 16), cfg)
        fit_ranking(head, src, pairs, cfg)
        s = score_from_distribution(head.distribution(src(torch.arange(64))))
        acc = float((s[pairs[:, 0]] > s[pairs[:, 1]]).float().mean())
        assert acc > 0.9, (loss, acc)


def test_training_is_deterministic_for_a_seed():
    maps, target, q = _world()
    pairs = torch.tensor([[0, 1], [2, 3], [4, 5]])

    def run(seed):
        cfg = TrainConfig(generic_epochs=3, rank_epochs=3, seed=seed)
        head = new_head((8, 16, 16), cfg)
        fit_generic(head, cached_source(maps), target, cfg)
        fit_ranking(head, cached_source(maps), pairs, cfg)
        return torch.cat([p.flatten() for p in head.parameters()])

    torch.testing.assert_close(run(1), run(1), rtol=0, atol=0)
    assert not torch.equal(run(1), run(2))


def test_config_round_trip_ignores_unknown_keys():
    cfg = TrainConfig(k=7, rank_loss="exp")
    assert TrainConfig.from_dict({**cfg.to_dict(), "from_the_future": 1}) == cfg


def test_a_taste_only_the_low_level_statistics_show_is_learned_with_them():
    """Deep maps that ignore exposure cannot learn a person who likes bright photos; the statistics can."""
    maps, target, _ = _world(n=96)
    bright = maps.stats[:, 2]
    te = torch.arange(64, 96)  # pairs among the first 64 photos only
    drawn = torch.randint(0, 64, (300, 2)).tolist()
    pairs = torch.tensor([(a, b) if bright[a] > bright[b] else (b, a) for a, b in drawn if a != b])
    src = cached_source(maps)
    accs = {}
    for low_level in (True, False):
        cfg = TrainConfig(generic_epochs=5, rank_epochs=30, rank_lr=3e-3, low_level=low_level)
        head = new_head((8, 16, 16), cfg, stats=6)
        fit_generic(head, src, target, cfg)
        fit_ranking(head, src, pairs, cfg)
        s = score_from_distribution(head.distribution(src(te)))
        t = bright[te]
        agree = (s[:, None] > s[None]) == (t[:, None] > t[None])
        accs[low_level] = float(agree[~torch.eye(len(te), dtype=torch.bool)].float().mean())
    assert accs[True] > 0.85 and accs[False] < 0.7, accs


def test_ranking_without_a_generic_model_fits_the_scaling_on_the_pair_images():
    maps, _, q = _world()
    cfg = TrainConfig(rank_epochs=2, pretrain=False)
    head = new_head((8, 16, 16), cfg, stats=6)
    assert not bool(head.stats_fitted)
    fit_ranking(head, cached_source(maps), torch.tensor([[0, 1], [2, 3]]), cfg)
    assert bool(head.stats_fitted)
    torch.testing.assert_close(head.stats_mean, maps.stats[:4].mean(0))


def test_training_never_reseeds_the_callers_global_random_state():
    maps, target, _ = _world(n=32)
    cfg = TrainConfig(generic_epochs=2, rank_epochs=2, batch_size=16, seed=5)
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    head = new_head((8, 16, 16), cfg)
    fit_generic(head, cached_source(maps), target, cfg)
    fit_ranking(head, cached_source(maps), torch.tensor([[0, 1], [2, 3], [4, 5]]), cfg)
    torch.testing.assert_close(torch.rand(3), expected)  # as if training had not run


def test_training_is_deterministic_whatever_the_callers_random_state():
    maps, target, _ = _world(n=32)
    cfg = TrainConfig(generic_epochs=2, batch_size=16, seed=3)
    a, b = new_head((8, 16, 16), cfg), new_head((8, 16, 16), cfg)
    torch.manual_seed(0)
    fit_generic(a, cached_source(maps), target, cfg)
    torch.manual_seed(99)  # whatever the caller's state
    fit_generic(b, cached_source(maps), target, cfg)
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_generic_updates_are_capped_for_big_neighbour_sets():
    maps, target, _ = _world(n=64)
    cfg = TrainConfig(generic_epochs=10, generic_steps=8, batch_size=16)  # 4 batches an epoch
    assert len(fit_generic(new_head((8, 16, 16), cfg), cached_source(maps), target, cfg)) == 2
    cfg = TrainConfig(generic_epochs=3, generic_steps=400, batch_size=16)
    assert len(fit_generic(new_head((8, 16, 16), cfg), cached_source(maps), target, cfg)) == 3


def test_torch_threads_sets_and_restores(monkeypatch):
    """Training runs single-threaded by default (busy machines: see piaa.settings) and gives the caller
    back its own thread count, also when the training raises; PIAA_TORCH_THREADS, read by the entry
    point's RunSettings.from_env, sets the count the entry holds and the training inside shares."""
    import pytest
    import torch

    from piaa.settings import RunSettings, torch_threads

    torch.set_num_threads(2)
    seen = []

    @torch_threads()
    def work(fail: bool = False) -> None:
        seen.append(torch.get_num_threads())
        if fail:
            raise RuntimeError("boom")

    work()
    assert seen == [1] and torch.get_num_threads() == 2
    with pytest.raises(RuntimeError):
        work(fail=True)
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("PIAA_TORCH_THREADS", "2")
    torch.set_num_threads(1)
    with torch_threads(RunSettings.from_env().torch_threads):  # what an entry point does
        work()
    assert seen[-1] == 2 and torch.get_num_threads() == 1

import pytest
import torch

from piaa.backbones import FeatureMaps
from piaa.models.head import AestheticHead, AestheticModel, HeadConfig


def _maps(n=3, c=(8, 16, 16), s1=6, s2=3, s3=1):
    g = torch.Generator().manual_seed(0)
    return FeatureMaps(
        torch.randn(n, c[0], s1, s1, generator=g),
        torch.rand(n, c[1], s2, s2, generator=g) * 6,
        torch.rand(n, c[2], s3, s3, generator=g),
        torch.rand(n, c[2], generator=g),
        torch.randn(n, 6, generator=g),
    )


@pytest.mark.parametrize("s3", [1, 2])  # EfficientNet's 1x1 pooled map, VGG16's spatial pool5
def test_head_outputs_distribution_and_score_on_1_to_10(s3):
    head = AestheticHead(HeadConfig(channels=(8, 16, 16), hidden=4)).eval()
    f = _maps(s3=s3)
    p = head.distribution(f)
    assert p.shape == (3, 10)
    torch.testing.assert_close(p.sum(1), torch.ones(3))
    s = head.score(f)
    assert ((s >= 1) & (s <= 10)).all()
    torch.testing.assert_close(s, (p * torch.arange(1, 11)).sum(1))


def test_attention_maps_are_spatial_and_in_unit_interval():
    head = AestheticHead(HeadConfig(channels=(8, 16, 16), hidden=4))
    a1, a2 = head.attention_maps(_maps())
    assert a1.shape == (3, 1, 6, 6) and a2.shape == (3, 1, 3, 3)
    assert float(a1.min().detach()) >= 0 and float(a1.max().detach()) <= 1
    assert a1.std() > 0  # depends on the content, not a constant


def test_without_attention_gates_are_absent_and_maps_are_ones():
    head = AestheticHead(HeadConfig(channels=(8, 16, 16), attention=False))
    assert head.gate1 is None and not any("gate" in k for k in head.state_dict())
    a1, a2 = head.attention_maps(_maps())
    assert bool((a1 == 1).all() and (a2 == 1).all())


def test_attention_changes_the_prediction():
    torch.manual_seed(0)
    with_att = AestheticHead(HeadConfig(channels=(8, 16, 16), hidden=4)).eval()
    without = AestheticHead(HeadConfig(channels=(8, 16, 16), attention=False)).eval()
    without.load_state_dict({k: v for k, v in with_att.state_dict().items() if "gate" not in k})
    f = _maps()
    assert not torch.allclose(with_att(f), without(f))


def test_config_round_trip():
    cfg = HeadConfig(channels=(112, 1280, 1280), attention=False)
    assert HeadConfig.from_dict(cfg.to_dict()) == cfg


def test_model_backpropagates_to_pixels(lite0):
    head = AestheticHead(HeadConfig(channels=lite0.info.channels)).eval()
    model = AestheticModel(lite0, head)
    x = torch.zeros(1, 3, 224, 224, requires_grad=True)
    model.score(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def _with_stats(f, stats):
    return f._replace(stats=stats)


def test_paper_head_ignores_low_level_statistics_and_piaa_head_reads_them():
    f = _maps()
    other = _with_stats(f, f.stats + torch.randn(3, 6))
    paper = AestheticHead(HeadConfig(channels=(8, 16, 16), hidden=4)).eval()
    assert "stats_mean" not in paper.state_dict()
    torch.testing.assert_close(paper(f), paper(other))
    head = AestheticHead(HeadConfig(channels=(8, 16, 16), hidden=4, stats=6)).eval()
    assert head.fc.in_features == 8 + 16 + 6
    assert not torch.allclose(head(f), head(other))


def test_statistics_are_standardized_once_with_the_training_images():
    head = AestheticHead(HeadConfig(channels=(8, 16, 16), hidden=4, stats=6)).eval()
    train = torch.randn(50, 6) * torch.tensor([1.0, 10, 100, 0.1, 5, 2]) + 40
    head.fit_stats_scaling(train)
    pooled = head.pool(_with_stats(_maps(n=50), train))[:, 24:]
    torch.testing.assert_close(pooled.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(pooled.std(0, unbiased=False), torch.ones(6), atol=1e-4, rtol=0)
    fixed = head.stats_mean.clone()
    head.fit_stats_scaling(train * 3)  # a ranking fine-tune keeps the generic model's constants
    torch.testing.assert_close(head.stats_mean, fixed)
    again = AestheticHead(HeadConfig(channels=(8, 16, 16), hidden=4, stats=6)).eval()
    again.load_state_dict(head.state_dict())  # the constants travel with the weights (profiles)
    f = _maps()
    torch.testing.assert_close(again(f), head(f))

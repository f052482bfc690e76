"""Every kind of named thing piaa offers lives in one :class:`piaa.registry.Registry`: the same
listing, lookup and unknown-name error for each (issue 22)."""

from __future__ import annotations

import pytest

from piaa.errors import PiaaError, UnknownNameError
from piaa.registry import Registry


def _registries() -> dict[str, Registry]:
    from piaa.backbones import BACKBONES
    from piaa.data.datasets import LOADERS
    from piaa.evaluation.methods import EVALUATION_METHODS
    from piaa.models.losses import RANK_LOSSES
    from piaa.models.pretrained import PRETRAINED
    from piaa.retouch.ops import OPS
    from piaa.sampling import SAMPLERS

    return {
        "backbone": BACKBONES,
        "strategy": SAMPLERS,
        "built-in profile": PRETRAINED,
        "dataset": LOADERS,
        "rank loss": RANK_LOSSES,
        "retouching op": OPS,
        "method": EVALUATION_METHODS,
    }


KINDS = list(_registries())
EXPECTED = {  # at least these, in this order
    "backbone": ["efficientnet-lite0", "efficientnet-lite2", "nima-mobilenet", "vgg16"],
    "strategy": ["random", "active"],
    "built-in profile": ["nima-ava"],
    "dataset": ["realcur", "flickr-aes", "para"],
    "rank loss": ["hinge", "exp", "logistic"],
    "retouching op": ["exposure", "colour", "dehaze"],
    "method": ["piaa (full)", "w/o rankings (generic)"],
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_registry_lists_and_gets_its_entries(kind: str) -> None:
    reg = _registries()[kind]
    assert reg.kind == kind
    names = reg.names()
    assert names[: len(EXPECTED[kind])] == EXPECTED[kind] or set(EXPECTED[kind]) <= set(names)
    for name in names:
        assert name in reg and reg.get(name) is reg[name] is dict(reg.items())[name]


@pytest.mark.parametrize("kind", KINDS)
def test_each_registry_refuses_an_unknown_name_in_one_line_naming_the_choices(kind: str) -> None:
    reg = _registries()[kind]
    with pytest.raises(PiaaError) as err:
        reg.get("no-such-thing")
    text = str(err.value)
    assert text.startswith(f"unknown {kind} 'no-such-thing'; choose one of: ") and "\n" not in text
    assert all(name in text for name in reg.names())
    assert isinstance(err.value, PiaaError) and "no-such-thing" not in reg


def test_the_public_lookups_go_through_the_registries() -> None:
    from piaa.backbones import get_backbone_config, list_backbones
    from piaa.data.datasets import list_datasets, load_dataset
    from piaa.models.losses import get_rank_loss
    from piaa.retouch.ops import get_ops
    from piaa.sampling import create_sampler, list_samplers

    assert "nima-mobilenet" in list_backbones(offline=True) and "vgg16" not in list_backbones(offline=True)
    assert get_backbone_config("nima-mobilenet").name == "nima-mobilenet"
    assert list_samplers()[:2] == ["random", "active"]
    assert list_datasets() == ["realcur", "flickr-aes", "para"]
    assert [op.name for op in get_ops("Color, exposure")] == ["exposure", "colour"]  # alias, pipeline order
    for call in (
        lambda: get_rank_loss("hing"),
        lambda: create_sampler("smart", ["a", "b"]),
        lambda: load_dataset("AVA"),
        lambda: get_ops("sharpen"),
    ):
        with pytest.raises(ValueError, match="unknown .*; choose one of: "):  # still a ValueError
            call()


def test_registry_filters_on_metadata_and_registers_as_a_decorator() -> None:
    reg: Registry[object] = Registry("widget", key=str.lower)

    @reg.register("Big", size=3)
    def big() -> None: ...

    reg.register("small", object(), size=1)
    assert reg.names() == ["Big", "small"] and reg.names(size=3) == ["Big"]
    assert reg.names(where=lambda m: m["size"] < 2) == ["small"]
    assert reg.get("BIG") is big and reg.resolve("big") == "Big" and reg.meta("Big") == {"size": 3}
    with pytest.raises(UnknownNameError, match="unknown widget 'x'; choose one of: Big, small"):
        reg.get("x")

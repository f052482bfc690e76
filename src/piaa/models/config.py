"""The training settings, :class:`TrainConfig`: every knob of ``piaa personalize`` and ``piaa evaluate``,
each field with its help text, from which the command line's options and ``--set``'s list are made.

Kept apart from :mod:`piaa.models.train` so that the command line builds its help without importing
torch; ``piaa.models.train.TrainConfig`` is the same class.
"""

from __future__ import annotations

from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any

from piaa.errors import SettingError


def _knob(default: Any, help: str) -> Any:
    """A field of :class:`TrainConfig` with its help text: the command line's options and ``--set``'s
    list are generated from it, so a default or a description is written once."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Every knob of ``piaa personalize`` (``--set KEY=VALUE`` reaches each); saved into each profile.
    Each field's ``metadata["help"]`` says what it does."""

    k: int = _knob(50, "Reference neighbours per album photo.")
    seed: int = _knob(0, "Random seed (same seed, same data: the same profile).")
    attention: bool = _knob(True, "Attention modules (off: the paper's ablation).")
    head_norm: str = _knob("none", "Normalisation of the pooled features: none or layer (measured worse).")
    low_level: bool = _knob(True, "The head also reads the early layers' statistics (off: the paper's head).")
    pretrain: bool = _knob(True, "Generic regression first (off: the paper's ablation).")
    generic_epochs: int = _knob(10, "Epochs of the generic regression.")
    generic_steps: int = _knob(
        400, "At most this many generic updates (big neighbour sets take fewer epochs)."
    )
    generic_lr: float = _knob(1e-3, "Learning rate of the generic regression.")
    batch_size: int = _knob(32, "Batch size of both trainings.")
    rank_epochs: int = _knob(20, "Epochs of the pairwise ranking fine-tune.")
    rank_lr: float = _knob(3e-4, "Learning rate of the ranking fine-tune.")
    rank_loss: str = _knob("hinge", "hinge, exp or logistic.")
    rank_scope: str = _knob("last", "Ranking trains last (the layers after the attention) or head (all).")
    margin: float = _knob(0.1, "Margin of the hinge ranking loss.")
    lr_halve_every: int = _knob(500, "The ranking rate halves every this many iterations.")
    weight_decay: float = _knob(1e-4, "Adam's weight decay.")
    anchor: float = _knob(0.0, "L2 pull toward the generic weights during ranking (0: off).")
    select: bool = _knob(True, "Pull toward the generic model as far as held-out pairs say (off: paper).")
    finetune_backbone: bool = _knob(False, "Train the backbone too (slow on a CPU).")
    backbone_lr: float = _knob(1e-5, "Learning rate of the backbone when it is fine-tuned.")
    # the selection among candidates (piaa.models.selection's module docstring)
    alphas: tuple[float, ...] = _knob(
        (0.25, 0.5, 0.75, 1.0),
        "Selection: pulls of the fine-tune toward the generic model (comma-separated).",
    )
    lambdas: tuple[float, ...] = _knob(
        (1e-1, 1e-2, 1e-3), "Selection: L2 pulls of the converged fit, strongest first (comma-separated)."
    )
    spread: float = _knob(1.0, "Selection: weight of the converged fit's entropy-loss term.")
    min_stated: int = _knob(6, "Selection: fewer stated pairs give the paper's fine-tune, as is.")
    min_fit_photos: int = _knob(20, "Selection: the fits are candidates from this many judged photos on.")
    max_folds: int = _knob(5, "Selection: photo folds of the cross-validation, at most.")
    z: float = _knob(1.5, "Selection: sign-test z a candidate must beat the generic model by.")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """From :meth:`to_dict`'s dict, or an older profile's (absent keys keep their defaults; keys of
        a newer piaa are ignored). Raises :class:`~piaa.errors.PiaaError` (a ValueError) naming the key
        whose value has the wrong type."""
        out: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            try:
                out[f.name] = coerce(f, d[f.name])
            except (TypeError, ValueError):
                problem = f"{d[f.name]!r} is not a {kind_name(f)}"
                raise SettingError(f"training setting {f.name}: {problem}") from None
        return cls(**out)

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> help text, in field order."""
        return {f.name: f.metadata["help"] for f in fields(cls)}


def kind_name(f: Field) -> str:
    """The type of a TrainConfig field, as people read it ("float", "list of float")."""
    default = f.default
    if isinstance(default, tuple):
        return "comma-separated list of float"
    return type(default).__name__


def coerce(f: Field, value: Any) -> Any:
    """``value`` (text from ``--set``, or a JSON value from a profile) as field ``f``'s type; raises
    ValueError or TypeError when it is not one."""
    default = f.default
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ValueError(value)
    if isinstance(default, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(float(x) for x in items)
    if isinstance(default, int):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if isinstance(default, float):
        return float(value)
    if not isinstance(value, str):
        raise TypeError(value)
    return value

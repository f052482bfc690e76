"""``piaa personalize``: album (+ preferences) -> a personal profile, from a reference corpus or from a
generic model that ships with piaa.

1. Embed the album. With a reference corpus (the paper, section 3.2): find the K nearest reference
   images of every album photo (their union) and train the generic model on them with the EMD loss
   (skipped for "w/o pre-training"). With ``generic`` (e.g. ``"nima-ava"``, the AVA-trained NIMA model,
   or any profile folder): start from that model, no reference needed.
2. If preferences are given: resolve contradictions, enrich by one-step transitivity, and fine-tune
   with the ranking loss (hinge, margin 0.1; section 3.3), pulled back toward the generic model as far
   as the person's own pairs say is right (:mod:`piaa.models.selection`). Without preferences the
   result is the generic model (the paper's "w/o rankings").
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from piaa.backbones import Backbone
from piaa.backbones.base import state_hash
from piaa.data.images import FailureLog, iter_image_files
from piaa.errors import UsageError
from piaa.features.extract import FeatureExtractor
from piaa.features.reference import Reference
from piaa.models.agreement import Agreement, held_out_agreement
from piaa.models.head import AestheticHead
from piaa.models.profile import Profile, ProfileConfig, check_save_target, load_profile
from piaa.models.selection import Selection, fit_personal
from piaa.models.train import TrainConfig, cached_source, fit_generic, fit_ranking, new_head, pixel_source
from piaa.preferences import (
    Contradiction,
    enrich_transitive,
    load_statements,
    match_names,
    normalize_name,
    resolve,
)
from piaa.settings import RunSettings, torch_threads


@dataclass
class PersonalizeReport:
    album_images: int = 0
    neighbors: int = 0
    pairs_stated: int = 0
    pairs_inferred: int = 0
    unknown_images: list[str] = field(default_factory=list)  # named by preferences, not in the album
    judgements_unmatched: int = 0  # judgements naming at least one photo that is not in the album
    contradictions: list[Contradiction] = field(default_factory=list)
    generic_loss: list[float] = field(default_factory=list)
    ranking_loss: list[float] = field(default_factory=list)
    selection: Selection = field(default_factory=Selection)
    failures: FailureLog = field(default_factory=FailureLog)  # photos that could not be read
    skipped: FailureLog = field(default_factory=FailureLog)  # files in the album that are not photos
    seconds: float = 0.0
    # the album ranked by the new profile, from the maps already computed (album-relative name, as in
    # preferences -> score); None when the backbone was fine-tuned, whose maps changed
    album_scores: dict[str, float] | None = None
    album_distributions: np.ndarray | None = None  # N x 10, the same photos in the same order
    agreement: Agreement | None = None  # held-out agreement with the person (nested CV), when asked

    def summary(self) -> dict[str, Any]:
        return {
            "album_images": self.album_images,
            "neighbors": self.neighbors,
            "pairs_stated": self.pairs_stated,
            "pairs_inferred": self.pairs_inferred,
            "unknown_images": self.unknown_images,
            "judgements_unmatched": self.judgements_unmatched,
            "contradictions": len(self.contradictions),
            "selection": self.selection.to_dict(),
            **({"agreement": self.agreement.to_dict()} if self.agreement is not None else {}),
            "skipped_images": [f"{p}: {r}" for p, r in self.failures],
            "generic_loss": [round(x, 5) for x in self.generic_loss],
            "ranking_loss": [round(x, 5) for x in self.ranking_loss],
            "seconds": round(self.seconds, 2),
        }


def _expand_home(p: Any) -> Any:
    """``~`` and ``~user`` expanded in a path given as str or Path; anything else as it is."""
    return type(p)(os.path.expanduser(p)) if isinstance(p, (str, Path)) else p


def personalize(
    reference: str | Path | Reference | None,
    album: str | Path,
    prefs: str | Path | None = None,
    out: str | Path | None = None,
    *,
    generic: str | Path | None = None,
    config: TrainConfig | None = None,
    engine: str | None = None,
    progress: bool | None = None,
    agreement: bool = False,
    curve: bool = False,
    trained: Callable[[Profile], None] | None = None,
    settings: RunSettings | None = None,
    **overrides: Any,
) -> Profile:
    """Train a personal profile (saved to ``out`` when given). ``overrides`` set TrainConfig fields.

    Give either ``reference`` (a reference corpus folder: the paper's KNN pipeline, on any backbone) or
    ``generic`` (a built-in model such as ``"nima-ava"``, or a profile folder, to fine-tune from).
    Raises ``ValueError``, ``ReferenceCorpusError``, ``ProfileError`` or ``PreferenceError`` (one line) for
    unusable input; none of the stated pairs naming a photo of the album is such an error.
    ``agreement``: also measure the held-out agreement with the person (:mod:`piaa.models.agreement`,
    several times the training's cost), reported and saved in the profile's metadata; ``curve``: with
    its learning curve. ``trained(profile)`` is called once the profile is trained (and saved), before
    the agreement is measured: the page shows the ranking meanwhile. ``settings``: how to run (default
    :meth:`RunSettings.resolve`: ``PIAA_TORCH_THREADS`` torch threads, else 1); ``engine`` and
    ``progress``, when given, replace its fields. Torch's thread count is held at
    ``settings.torch_threads`` throughout (:func:`piaa.settings.torch_threads`) and given back after."""
    run = RunSettings.resolve(settings, engine=engine, progress=progress)
    with torch_threads(run.torch_threads):
        return _personalize(
            reference, album, prefs, out, generic, config, agreement, curve, trained, run, overrides
        )


def _personalize(
    reference: str | Path | Reference | None,
    album: str | Path,
    prefs: str | Path | None,
    out: str | Path | None,
    generic: str | Path | None,
    config: TrainConfig | None,
    agreement: bool,
    curve: bool,
    trained: Callable[[Profile], None] | None,
    run: RunSettings,
    overrides: dict[str, Any],
) -> Profile:
    t0 = time.perf_counter()
    # Python callers write "~/Pictures" as a shell user would (the README's example); no shell expands it.
    reference, album, prefs, out, generic = (_expand_home(p) for p in (reference, album, prefs, out, generic))
    cfg = dataclasses.replace(config or TrainConfig(), **overrides)
    if (reference is None) == (generic is None):
        raise UsageError("personalize needs a reference corpus (--reference) or a generic model (--generic)")
    album = Path(album)
    if not album.is_dir():
        raise FileNotFoundError(f"{album}: album folder not found")
    if out is not None:
        check_save_target(Path(out))  # before any training: never an album's folder
    rep = PersonalizeReport()
    statements = load_statements(prefs, album) if prefs is not None else []  # a bad file fails first
    ref: Reference | None = None
    if generic is not None:
        if cfg.finetune_backbone:
            raise UsageError("--finetune-backbone needs --reference (the generic model's backbone is kept)")
        base = load_profile(generic)
        backbone, start_head = base.backbone, copy.deepcopy(base.head)
        origin = {"generic": str(generic)}
    else:
        ref = reference if isinstance(reference, Reference) else Reference.open(reference)
        backbone, start_head = ref.create_backbone(), None
        origin = {"reference": str(ref.path.resolve())}
    extractor = FeatureExtractor(backbone, run)
    files = list(iter_image_files([album], skipped=rep.skipped))
    kept, album_maps = extractor.collect(files, failures=rep.failures, desc="album")
    if album_maps is None:
        raise UsageError(f"{album}: no readable images")
    files = [files[i] for i in kept]
    rep.album_images = len(files)
    names = [normalize_name(os.path.abspath(f), album) for f in files]
    pair_idx = _preference_pairs(statements, names, rep, prefs)
    stated = [(names[a], names[b]) for a, b in pair_idx[: rep.pairs_stated]]

    trainable: Backbone | None = None
    if ref is not None:
        head, album_source, trainable = _generic_from_reference(
            ref, album_maps, files, backbone, extractor, cfg, rep, run
        )
    else:
        head, album_source = start_head, cached_source(album_maps)
    assert head is not None
    generic_head = copy.deepcopy(head) if trainable is None else None  # carried by the profile (retouch)
    if len(pair_idx):
        pairs = torch.from_numpy(pair_idx)
        if trainable is None:
            rep.selection = fit_personal(head, album_source, pairs, rep.pairs_stated, cfg, run=run)
            rep.ranking_loss = rep.selection.history
        else:
            rep.ranking_loss = fit_ranking(head, album_source, pairs, cfg, backbone=trainable, run=run)
    if trainable is not None:
        backbone.requires_grad_(False)
        backbone.info = dataclasses.replace(backbone.info, weights_hash=state_hash(backbone))  # new weights
    rep.seconds = time.perf_counter() - t0
    profile = Profile(
        head,
        backbone,
        ProfileConfig(training=cfg, data={"album": str(album.resolve()), **origin, **rep.summary()}),
        backbone_finetuned=trainable is not None,
        pairs=stated,
        generic_head=generic_head,
    )
    if trainable is None:
        with torch.no_grad():
            scores, rep.album_distributions = profile.score_features(album_maps)
        rep.album_scores = {n: float(s) for n, s in zip(names, scores, strict=True)}
    profile.report = rep
    if out is not None:
        profile.save(out)
    if agreement and generic_head is not None and rep.pairs_stated:
        if trained is not None:
            trained(profile)
        stated_rows = torch.from_numpy(pair_idx[: rep.pairs_stated])
        rep.agreement = held_out_agreement(generic_head, album_source, stated_rows, cfg, curve=curve)
        if rep.agreement is not None:
            data = {**profile.config.data, "agreement": rep.agreement.to_dict()}
            profile.config = dataclasses.replace(profile.config, data=data)
            if out is not None:
                profile.save(out)
    elif trained is not None:
        trained(profile)
    return profile


def _generic_from_reference(
    ref: Reference,
    album_maps: Any,
    files: list[Path],
    backbone: Backbone,
    extractor: FeatureExtractor,
    cfg: TrainConfig,
    rep: PersonalizeReport,
    run: RunSettings,
) -> tuple[AestheticHead, Any, Backbone | None]:
    """The paper's generic model: EMD regression on the album's K nearest reference images (section
    3.2). Returns the head, the album's feature source and the backbone when it is trained too."""
    nn_rows = ref.neighbor_union(album_maps.embedding.numpy(), cfg.k)
    rep.neighbors = len(nn_rows)
    if cfg.finetune_backbone:
        backbone.requires_grad_(True)  # batch-norm statistics stay frozen (eval mode)
        ref_source = pixel_source(backbone, _pixels(backbone, [ref.paths[r] for r in nn_rows]))
        album_source, trainable = pixel_source(backbone, _pixels(backbone, files)), backbone
    else:
        if ref.has_maps:
            ref_source = stored_source(ref, nn_rows)
        else:  # a reference built with --no-maps: compute the neighbours' maps now
            paths = [ref.paths[r] for r in nn_rows]
            ok, maps = extractor.collect(paths, failures=rep.failures, desc="neighbours")
            if maps is None:
                raise UsageError(f"{ref.path}: none of the reference neighbours' images could be read")
            ref_source, nn_rows = cached_source(maps), nn_rows[ok]
        album_source, trainable = cached_source(album_maps), None
    head = new_head(backbone.info.channels, cfg, backbone.info.stats_dim)
    if cfg.pretrain:
        dists = torch.from_numpy(ref.distributions[nn_rows])
        rep.generic_loss = fit_generic(head, ref_source, dists, cfg, backbone=trainable, run=run)
    return head, album_source, trainable


MAPS_IN_MEMORY = 1 << 30  # bytes of neighbour maps held at once; past it they are read batch by batch


def stored_source(ref: Reference, rows: np.ndarray) -> Any:
    """The stored maps of reference ``rows`` as a training source: all in memory while they fit in
    :data:`MAPS_IN_MEMORY`, else streamed from the store batch by batch (memory bounded by a batch;
    the same values either way, so the same model)."""
    first = ref.maps(rows[:1])
    per_row = sum(t.element_size() * t[0].numel() for t in first)
    if per_row * len(rows) <= MAPS_IN_MEMORY:
        return cached_source(ref.maps(rows))

    def get(idx: torch.Tensor) -> Any:
        return type(first)(*(t.float() for t in ref.maps(rows[idx.numpy()])))

    return get


def _pixels(backbone: Backbone, paths: list[Path]) -> np.ndarray:
    return np.stack([backbone.preprocess.load(p) for p in paths])


def _preference_pairs(
    statements: list[tuple[str, str]], names: list[str], rep: PersonalizeReport, source: Any = None
) -> np.ndarray:
    """Stated pairs first, then the inferred ones, as rows of (preferred, other) album indices.
    Judgements naming photos outside the album are counted and named in ``rep``; when none names two
    album photos the result would not be personal, so that is an error."""
    matched, rep.unknown_images = match_names(statements, names)
    rep.judgements_unmatched = len(statements) - len(matched)
    if statements and not matched:
        where = f"{source}: " if source is not None else ""
        raise UsageError(
            f"{where}none of the {len(statements)} judgements name two photos of the album (for example "
            f"{rep.unknown_images[0]!r}); names must be album-relative or absolute paths of its photos"
        )
    pairs, rep.contradictions = resolve(matched)
    index = {n: i for i, n in enumerate(names)}
    enriched = enrich_transitive(pairs)
    rep.pairs_stated = len(pairs)
    rep.pairs_inferred = len(enriched) - len(pairs)
    return np.array([(index[a], index[b]) for a, b in enriched], dtype=np.int64).reshape(-1, 2)

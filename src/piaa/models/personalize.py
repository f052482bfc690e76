"""``piaa personalize``: album + reference (+ preferences) -> a personal profile.

1. Embed the album; find the K nearest reference images of every album photo (their union).
2. Train the generic model on those neighbours with the EMD loss (skipped for "w/o pre-training").
3. If preferences are given: resolve contradictions, enrich by one-step transitivity, and fine-tune
   with the ranking loss (hinge, margin 0.1). Without preferences the result is the generic model
   (the paper's "w/o rankings").
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from piaa.backbones import Backbone
from piaa.backbones.base import state_hash
from piaa.data.images import FailureLog, iter_image_files
from piaa.features.extract import FeatureExtractor
from piaa.features.reference import Reference
from piaa.models.profile import Profile
from piaa.models.train import TrainConfig, cached_source, fit_generic, fit_ranking, new_head, pixel_source
from piaa.preferences import Contradiction, enrich_transitive, load_statements, normalize_name, resolve


@dataclass
class PersonalizeReport:
    album_images: int = 0
    neighbors: int = 0
    pairs_stated: int = 0
    pairs_inferred: int = 0
    unknown_images: list[str] = field(default_factory=list)
    contradictions: list[Contradiction] = field(default_factory=list)
    generic_loss: list[float] = field(default_factory=list)
    ranking_loss: list[float] = field(default_factory=list)
    failures: FailureLog = field(default_factory=FailureLog)  # photos that could not be read
    skipped: FailureLog = field(default_factory=FailureLog)  # files in the album that are not photos
    seconds: float = 0.0
    # the album ranked by the new profile, from the maps already computed (album-relative name, as in
    # preferences -> score); None when the backbone was fine-tuned, whose maps changed
    album_scores: dict[str, float] | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "album_images": self.album_images,
            "neighbors": self.neighbors,
            "pairs_stated": self.pairs_stated,
            "pairs_inferred": self.pairs_inferred,
            "unknown_images": self.unknown_images,
            "contradictions": len(self.contradictions),
            "skipped_images": [f"{p}: {r}" for p, r in self.failures],
            "generic_loss": [round(x, 5) for x in self.generic_loss],
            "ranking_loss": [round(x, 5) for x in self.ranking_loss],
            "seconds": round(self.seconds, 2),
        }


def _pixels(backbone: Backbone, paths: list[Path]) -> np.ndarray:
    return np.stack([backbone.preprocess.load(p) for p in paths])


def personalize(
    reference: str | Path | Reference,
    album: str | Path,
    prefs: str | Path | None = None,
    out: str | Path | None = None,
    *,
    config: TrainConfig | None = None,
    engine: str = "auto",
    progress: bool = True,
    **overrides: Any,
) -> Profile:
    """Train a personal profile (saved to ``out`` when given). ``overrides`` set TrainConfig fields."""
    t0 = time.perf_counter()
    cfg = dataclasses.replace(config or TrainConfig(), **overrides)
    ref = reference if isinstance(reference, Reference) else Reference.open(reference)
    album = Path(album)
    if not album.is_dir():
        raise FileNotFoundError(f"{album}: album folder not found")
    rep = PersonalizeReport()
    statements = (
        load_statements(prefs, album) if prefs is not None else []
    )  # a bad file fails before any work
    backbone = ref.create_backbone()
    extractor = FeatureExtractor(backbone, engine=engine)
    files = list(iter_image_files([album], skipped=rep.skipped))
    kept, album_maps = extractor.collect(
        files, failures=rep.failures, progress="album" if progress else False
    )
    if album_maps is None:
        raise ValueError(f"{album}: no readable images")
    files = [files[i] for i in kept]
    rep.album_images = len(files)

    # 1. neighbours (union over the album)
    nn_rows = ref.neighbor_union(album_maps.embedding.numpy(), cfg.k)
    rep.neighbors = len(nn_rows)

    # preferences -> (preferred, other) rows of album indices
    names = [normalize_name(os.path.abspath(f), album) for f in files]
    pair_idx = _preference_pairs(statements, names, rep)
    stated = [(names[a], names[b]) for a, b in pair_idx[: rep.pairs_stated]]

    if cfg.finetune_backbone:
        backbone.requires_grad_(True)  # batch-norm statistics stay frozen (eval mode)
        ref_source = pixel_source(backbone, _pixels(backbone, [ref.paths[r] for r in nn_rows]))
        album_source = pixel_source(backbone, _pixels(backbone, files))
        trainable: Backbone | None = backbone
    else:
        if ref.has_maps:
            ref_maps = ref.maps(nn_rows)
        else:  # a reference built with --no-maps: compute the neighbours' maps now
            paths = [ref.paths[r] for r in nn_rows]
            ok, maps = extractor.collect(
                paths, failures=rep.failures, progress="neighbours" if progress else False
            )
            if maps is None:
                raise ValueError(f"{ref.path}: none of the reference neighbours' images could be read")
            ref_maps, nn_rows = maps, nn_rows[ok]
        ref_source, album_source, trainable = cached_source(ref_maps), cached_source(album_maps), None

    # 2. generic regression, 3. ranking fine-tuning
    head = new_head(backbone.info.channels, cfg, backbone.info.stats_dim)
    if cfg.pretrain:
        dists = torch.from_numpy(ref.distributions[nn_rows])
        rep.generic_loss = fit_generic(head, ref_source, dists, cfg, backbone=trainable, progress=progress)
    if len(pair_idx):
        rep.ranking_loss = fit_ranking(
            head, album_source, torch.from_numpy(pair_idx), cfg, backbone=trainable, progress=progress
        )
    if trainable is not None:
        backbone.requires_grad_(False)
        backbone.info = dataclasses.replace(
            backbone.info, weights_hash=state_hash(backbone)
        )  # names the new weights
    rep.seconds = time.perf_counter() - t0
    profile = Profile(
        head,
        backbone,
        {
            "training": cfg.to_dict(),
            "data": {"album": str(album.resolve()), "reference": str(ref.path.resolve()), **rep.summary()},
        },
        backbone_finetuned=cfg.finetune_backbone,
        pairs=stated,
    )
    if not cfg.finetune_backbone:
        scores, _ = profile.score_features(album_maps)
        rep.album_scores = {n: float(s) for n, s in zip(names, scores, strict=True)}
    profile.report = rep
    if out is not None:
        profile.save(out)
    return profile


def _preference_pairs(
    statements: list[tuple[str, str]], names: list[str], rep: PersonalizeReport
) -> np.ndarray:
    """Stated pairs first, then the inferred ones, as rows of (preferred, other) album indices."""
    pairs, rep.contradictions = resolve(statements)
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({n for p in pairs for n in p if n not in index})
    rep.unknown_images = unknown
    known = [p for p in pairs if p[0] in index and p[1] in index]
    if pairs and not known:
        raise ValueError(
            f"none of the {len(pairs)} preference pairs name photos of the album (for example "
            f"{unknown[0]!r}); the names must be album-relative paths or absolute paths of its photos"
        )
    enriched = enrich_transitive(known)
    rep.pairs_stated = len(known)
    rep.pairs_inferred = len(enriched) - len(known)
    return np.array([(index[a], index[b]) for a, b in enriched], dtype=np.int64).reshape(-1, 2)

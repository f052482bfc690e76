"""Before and after, in the page: a photo of the ranked album retouched by the generic and by the personal
model (the paper's section 4.6), each image scored by both models — what ``piaa retouch``'s report shows.

It needs the personal profile the page trained; the generic model is the one the profile carries
(``generic.safetensors``). Parameters are found on the backbone-sized thumbnail, as in ``piaa retouch``,
and applied to a copy of at most :data:`PREVIEW_SIDE` pixels (the page shows no more); the images
go back as embedded JPEGs, so no new file or URL is ever served. The method is the one
``piaa retouch`` would use: the learned predictor saved with the profile once
:meth:`BeforeAfter.prepare` has trained it (in the background, right after the ranking), per-photo
optimisation until then. Results are cached per profile and photo; one retouch runs at a time.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from piaa.data.images import load_image
from piaa.settings import QUIET, RunSettings, torch_threads
from piaa.web.album import ServedAlbum

PREVIEW_SIDE = 768  # pixels on the long edge of the images the page gets back
OPS = "exposure,colour,dehaze"


class BeforeAfter:
    """Retouches album photos for the page with a trained profile; thread-safe."""

    def __init__(self, album: ServedAlbum | dict[str, Path], settings: RunSettings = QUIET) -> None:
        """``album``: the served album (photos read through :meth:`ServedAlbum.open`, which checks each
        is still the file listed at startup), or plain ``{name: path}`` (``KeyError`` for others);
        ``settings``: the app's (torch's thread count is held at theirs while a photo is retouched)."""
        self.settings = settings
        if isinstance(album, ServedAlbum):
            self.files, self._open = album.files, album.open
        else:
            self.files = dict(album)
            self._open = lambda name: contextlib.nullcontext(self.files[name])
        self._lock = threading.Lock()  # one retouch at a time: each is seconds of CPU
        self._profile: Any = None
        self._scorers: dict[str, Any] = {}
        self._cache: dict[tuple[str, str], dict[str, Any]] = {}
        self.state = "idle"  # of the learned predictor: idle, preparing, ready, unavailable, error
        self.message = ""

    def prepare(self, profile: Any) -> None:
        """Train (or find) the learned predictors for the personal and the generic model and save them
        with the profile, so later retouches, here and in ``piaa retouch``, take one forward pass. On
        failure ``state`` is "error" and the page keeps using per-photo optimisation."""
        from piaa.retouch.batch import prepare_predictors

        self.state = "preparing"
        try:
            with torch_threads(self.settings.torch_threads):
                method, _ = prepare_predictors(
                    profile, _scorers(profile), OPS, "auto", inputs=list(self.files.values())
                )
            self.state = "ready" if method == "learned" else "unavailable"
        except Exception as exc:  # noqa: BLE001 - the page falls back to per-photo optimisation
            self.state, self.message = "error", f"{type(exc).__name__}: {exc}"

    def retouch(self, profile: Any, name: str) -> dict[str, Any]:
        """``{"name", "method", "images": {kind: data URI}, "scores": {model: {kind: score}},
        "params": {op: {param: value}}, "generic": model name or None}`` for album photo ``name``
        (kinds: original, generic, personal; scores on 1-10 on the backbone-sized thumbnail).
        Raises ``AlbumImageNotFound`` for a name that is not an album photo (or no longer the file
        listed at startup) and ``ImageError`` for one that can no longer be read."""
        from piaa.retouch.batch import _data_uri, _score, prepare_predictors
        from piaa.retouch.core import RetouchSettings, apply_retouch

        with self._lock, torch_threads(self.settings.torch_threads):
            if profile is not self._profile:  # trained again: earlier results are stale
                self._profile, self._scorers, self._cache = profile, _scorers(profile), {}
            scorers, ops = self._scorers, OPS
            method, predictors = prepare_predictors(profile, scorers, ops, "auto", train=False)
            if (name, method) in self._cache:
                return self._cache[(name, method)]
            with self._open(name) as path:  # the file checked at startup, read once (album.py)
                img = load_image(path, draft_size=(PREVIEW_SIDE, PREVIEW_SIDE))
            img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
            runs = {
                role: apply_retouch(sc, img, RetouchSettings(ops=ops, method=method), predictors[role])
                for role, sc in scorers.items()
            }
            images = {"original": img, **{role: r.image for role, r in runs.items()}}
            images = {k: images[k] for k in ("original", "generic", "personal") if k in images}
            result = {
                "name": name,
                "method": method,
                "generic": scorers["generic"].profile.config.name if "generic" in scorers else None,
                "images": {k: _data_uri(v) for k, v in images.items()},
                "scores": {
                    role: dict(
                        zip(images, (round(x, 3) for x in _score(sc, list(images.values()))), strict=True)
                    )
                    for role, sc in scorers.items()
                },
                "params": runs["personal"].params,
            }
            self._cache[(name, method)] = result
            return result


def _scorers(profile: Any) -> dict[str, Any]:
    from piaa.retouch.scoring import pixel_scorer

    scorers = {"personal": pixel_scorer(profile)}
    generic = profile.generic()
    if generic is not None:
        scorers["generic"] = pixel_scorer(generic)
    return scorers

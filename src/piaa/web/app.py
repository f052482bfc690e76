"""``piaa collect``: a local web page that shows two album photos and records which one the person prefers.

Every click is one ``PreferenceStore.add`` (its own durable transaction) before the page moves on, so
closing the tab or killing the server loses nothing already clicked. Request handlers run in a thread
pool; the store, the samplers and the album cache are thread-safe, and each ``POST /api/pair`` draws a
fresh pair, so two tabs never get the same one.

From 20 judgements on the personal model trains in the background while the person keeps clicking
(:mod:`piaa.web.training`); pairs are chosen actively by default (the README measured 50 active
choices worth about 100 random ones), ``--strategy random`` is the paper's protocol.

Other web sites must not be able to drive the app from the person's browser: every request that changes
anything (drawing a pair uses it up) is a same-origin POST with a JSON body, requests the browser marks
cross-site are refused, and bodies and echoed names are capped (:mod:`piaa.web.security` says why each
check is there). Each tab sends its own id with its judgements, and undo removes only that tab's.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from piaa.data.images import ImageError
from piaa.errors import UsageError
from piaa.models.explain import ExplainError
from piaa.preferences import Pair, PreferenceStore, match_names
from piaa.sampling import create_sampler, list_samplers
from piaa.settings import RunSettings
from piaa.web.album import DISPLAY_SIDE, THUMB_SIDE, AlbumImageNotFound, ServedAlbum
from piaa.web.explaining import Explainer
from piaa.web.features import FeatureFn, Features, default_features
from piaa.web.security import clip_name, harden
from piaa.web.training import DEFAULT_GENERIC, Trainer

STATIC = Path(__file__).parent / "static"
MAX_NAME_CHARS = 4096  # longer than any path a file system allows
MIN_TRAIN = 20  # judgements before the personal model first trains (the held-out figure needs some)


@dataclass
class CollectConfig:
    """Everything ``piaa collect`` takes; ``features`` and ``train_overrides`` are for tests and tuning."""

    album: Path
    store: Path
    target: int = 100
    strategy: str = "active"
    reference: Path | None = None
    generic: str | None = None  # with no reference: nima-ava unless this names another model or profile
    seed: int = 0
    profile_dir: Path | None = None  # default: next to the store, "<store stem>-profile"
    host: str = "127.0.0.1"
    features: FeatureFn | None = None  # album paths -> the active sampler's features (default: backbone)
    train_overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields for personalize
    prepare_retoucher: bool = True  # after training: the learned retoucher, in the background
    min_train: int = MIN_TRAIN  # judgements before training can start
    auto_train: bool = True  # train at min_train and again at the target, without a click

    def check(self) -> None:
        """Fail before the server starts, with one line naming what is wrong."""
        if not self.album.is_dir():
            raise FileNotFoundError(f"{self.album}: album folder not found")
        if self.strategy not in list_samplers():
            choices = ", ".join(list_samplers())
            raise UsageError(f"unknown strategy {self.strategy!r}; choose one of {choices}")
        if self.target < 1:
            raise UsageError(f"--target must be at least 1, got {self.target}")
        if not self.store.parent.is_dir():
            raise FileNotFoundError(f"{self.store.parent}: folder for the preference store not found")
        if self.reference is not None and self.generic is not None:
            raise UsageError("give --reference or --generic, not both")
        if self.reference is not None:
            if not self.reference.is_dir():
                raise FileNotFoundError(f"{self.reference}: reference folder not found")
            from piaa.features.reference import Reference

            Reference.open(self.reference)  # a photo folder is refused now, not after the clicks
        if self.generic is not None:
            from piaa.models.profile import list_pretrained

            if self.generic not in list_pretrained() and not Path(self.generic).is_dir():
                names = ", ".join(list_pretrained())
                raise UsageError(f"{self.generic}: no such generic model ({names}) or profile folder")


class Collector:
    """The app's state: album, store, pair sampler, features and trainer."""

    def __init__(self, cfg: CollectConfig) -> None:
        cfg.check()
        self.cfg = cfg
        self.album = ServedAlbum(cfg.album)
        self.store = PreferenceStore(cfg.store)
        try:
            pairs = self.album_pairs()
            self.sampler = create_sampler(
                cfg.strategy, self.album.names, seed=cfg.seed, seen=pairs, background=True
            )
            paths = [self.album.files[n] for n in self.album.names]
            self.features = Features(paths, cfg.features or default_features)
            self.sampler.update(pairs)
            profile_dir = cfg.profile_dir or cfg.store.with_name(f"{cfg.store.stem}-profile")
            self.trainer = Trainer(
                album=self.album,
                store_path=cfg.store,
                reference=cfg.reference,
                generic=cfg.generic or (None if cfg.reference else DEFAULT_GENERIC),
                profile_dir=profile_dir,
                pairs=self.album_pairs,
                overrides=cfg.train_overrides,
                prepare_retoucher=cfg.prepare_retoucher,
                settings=RunSettings.from_env(),  # the app is an entry point: resolved once, here
            )
        except BaseException:
            self.store.close()
            raise
        self.skipped = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Background work that should not delay the first page: features for a sampler that uses them."""
        if self.sampler.needs_features:
            threading.Thread(target=self._load_features, daemon=True).start()
        threading.Thread(target=self.trainer.resume, daemon=True).start()  # the last session's model

    def _load_features(self) -> None:
        with contextlib.suppress(Exception):  # the sampler stays random; /api/state shows the error
            self.sampler.set_features(self.features.get())

    def close(self) -> None:
        self.store.close()

    def album_pairs(self) -> list[Pair]:
        """The store's effective pairs between photos of this album, spelled as the album spells them
        (judgements stored before names were normalised may differ in spaces or Unicode form)."""
        return match_names(self.store.pairs(), self.album.names)[0]

    # -- views -----------------------------------------------------------------------------------------

    def photo(self, name: str) -> dict[str, str]:
        return {"name": name, "url": self.album.url(name)}

    def state(self) -> dict[str, Any]:
        count = len(self.store.pairs())
        judged = len(self.album_pairs())
        sampler = self.sampler.status()
        if self.sampler.needs_features:
            sampler |= {
                "features": "ready" if self.features.ready else (self.features.error or "computing"),
                "features_done": self.features.done,
            }
        return {
            "count": count,
            "judged": judged,  # of them, pairs of this album's photos: what training uses
            "target": self.cfg.target,
            "min_train": self.cfg.min_train,
            "model_judgements": self.trainer.model_judgements(),
            "album": len(self.album),
            "album_skipped": len(self.album.skipped),  # photos that cannot be shown: GET /api/album
            "skipped": self.skipped,
            "remaining": self.sampler.remaining,
            "reference": self.cfg.reference is not None,
            "origin": self.trainer.origin,
            "sampler": sampler,
            "training": self.trainer.status()["state"],
        }

    def next_pair(self) -> dict[str, Any] | None:
        pair = self.sampler.next()
        return None if pair is None else {"left": self.photo(pair[0]), "right": self.photo(pair[1])}

    def _after_change(self) -> None:
        self.sampler.update(self.album_pairs())

    def choose(self, preferred: str, other: str, tab: str = "") -> None:
        self._check_names(preferred, other)
        self.store.add(preferred, other, source=_source(tab))
        self.sampler.mark_seen(preferred, other)
        self._after_change()
        self._maybe_train()

    def _maybe_train(self) -> None:
        """Train without a click when the judgements first reach ``min_train``, and again at the
        target; in between (and after) the page offers "Train again"."""
        if not self.cfg.auto_train or self.trainer.running or self.trainer.failed():
            return
        n, seen = len(self.album_pairs()), self.trainer.model_judgements()
        if n >= self.cfg.min_train and (seen is None or (n >= self.cfg.target > seen)):
            self.trainer.start()

    def skip(self, a: str, b: str) -> None:
        self._check_names(a, b)
        with self._lock:
            self.skipped += 1
        self.sampler.mark_seen(a, b)

    def undo(self, tab: str = "") -> dict[str, Any] | None:
        j = self.store.undo(source=_source(tab))  # this tab's latest: never another tab's judgement
        self._after_change()
        if j is None:
            return None
        undone = {"preferred": j.preferred, "other": j.other}
        if j.preferred in self.album and j.other in self.album:  # show it again, as it was
            undone["pair"] = {"left": self.photo(j.preferred), "right": self.photo(j.other)}
        return undone

    def _check_names(self, a: str, b: str) -> None:
        for name in (a, b):
            if name not in self.album:
                raise HTTPException(404, f"not an image of this album: {clip_name(name)}")
        if a == b:
            raise HTTPException(422, "a pair needs two different images")


Name = Annotated[str, Field(max_length=MAX_NAME_CHARS)]
TabId = Annotated[str, Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")]


def _source(tab: str) -> str:
    """The store's ``source`` of a judgement made in tab ``tab`` (no id: ``collect``)."""
    return f"collect:{tab}" if tab else "collect"


class Choice(BaseModel):
    preferred: Name
    other: Name
    tab: TabId = ""


class Undo(BaseModel):
    tab: TabId = ""


class Skip(BaseModel):
    a: Name
    b: Name


class RetouchRequest(BaseModel):
    name: Name


def create_app(cfg: CollectConfig, *, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The FastAPI app; ``app.state.collector`` holds the state. The store closes when the app stops."""
    collector = Collector(cfg)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        collector.start()
        try:
            yield
        finally:
            collector.close()

    app = FastAPI(title="piaa collect", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.collector = collector
    harden(app, cfg.host, allowed_hosts)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/img/{name:path}")
    def image(name: str, size: str = "display") -> Response:
        side = THUMB_SIDE if size == "thumb" else DISPLAY_SIDE
        try:
            data = collector.album.jpeg(name, side)
        except AlbumImageNotFound:
            raise HTTPException(404, "not found") from None
        headers = {"Cache-Control": "private, max-age=3600", "Cross-Origin-Resource-Policy": "same-origin"}
        return Response(data, media_type="image/jpeg", headers=headers)

    @app.get("/api/state")
    def state() -> dict[str, Any]:
        return collector.state()

    @app.get("/api/album")
    def album() -> dict[str, Any]:
        return {
            "photos": len(collector.album),
            "skipped_photos": collector.album.skipped_photos(),
            "not_photos": collector.album.skipped_photos(collector.album.not_photos),
        }

    @app.post("/api/pair")
    def pair() -> dict[str, Any]:
        """POST, not GET: drawing a pair uses it up, so a cross-site link or image must not do it."""
        return {"pair": collector.next_pair(), "state": collector.state()}

    @app.post("/api/choose")
    def choose(choice: Choice) -> dict[str, Any]:
        collector.choose(choice.preferred, choice.other, choice.tab)
        return {"state": collector.state()}

    @app.post("/api/skip")
    def skip(body: Skip) -> dict[str, Any]:
        collector.skip(body.a, body.b)
        return {"state": collector.state()}

    @app.post("/api/undo")
    def undo(body: Undo | None = None) -> dict[str, Any]:
        return {"undone": collector.undo(body.tab if body else ""), "state": collector.state()}

    @app.get("/api/train")
    def train_status() -> dict[str, Any]:
        return collector.trainer.status()

    @app.post("/api/train")
    def train() -> JSONResponse:
        judged = len(collector.album_pairs())
        if judged < cfg.min_train:
            raise HTTPException(409, f"training starts at {cfg.min_train} judgements; {judged} so far")
        started = collector.trainer.start()
        return JSONResponse(collector.trainer.status(), status_code=202 if started else 409)

    @app.post("/api/retouch")
    def retouch(body: RetouchRequest) -> dict[str, Any]:
        """Before/after of one album photo: original, generic and personal retouch, both models' scores
        (:mod:`piaa.web.retouching`). POST: it costs seconds of CPU, so only this page may ask."""
        try:
            collector.album.path(body.name)  # only album photos, still where they were at startup
        except AlbumImageNotFound:
            raise HTTPException(404, f"not an image of this album: {clip_name(body.name)}") from None
        profile = collector.trainer.profile
        if profile is None:
            raise HTTPException(409, "no personal model to retouch with: train your model first")
        try:
            return collector.trainer.before_after.retouch(profile, body.name)
        except AlbumImageNotFound:
            raise HTTPException(404, f"not an image of this album: {clip_name(body.name)}") from None
        except ImageError as exc:
            raise HTTPException(422, f"{clip_name(body.name)} cannot be read: {exc.reason}") from None

    explainer = Explainer(collector.album)

    @app.post("/api/explain")
    def explain() -> dict[str, Any]:
        """What the personal model learnt (:mod:`piaa.web.explaining`). POST: a feature pass over the
        judged photos costs seconds of CPU, so only this page may ask."""
        profile = collector.trainer.profile
        if profile is None:
            raise HTTPException(409, "no personal model to explain: train your model first")
        try:
            return explainer.explain(profile)
        except ExplainError as exc:
            raise HTTPException(422, str(exc)) from None

    return app


def check_port(host: str, port: int) -> None:
    """A taken port is one clear error up front rather than a uvicorn log line."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(addr)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"{host}:{port}: cannot listen there ({reason}); try another --port") from None


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the app with uvicorn until Ctrl-C (every judgement is already on disk by then)."""
    import uvicorn

    check_port(host, port)
    album: ServedAlbum = app.state.collector.album
    if album.not_photos:  # plain text: names may hold anything
        print(album.not_photos.summary("file"), file=sys.stderr, flush=True)
    if album.skipped:
        print(album.skipped.summary("photo") + "\n(these are never shown)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")

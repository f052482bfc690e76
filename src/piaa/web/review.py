"""``piaa review``: the groups of a cull as strips; the photographer's corrections become preferences.

The page shows every group of a ``piaa cull --output F.json`` run, best frame first, the pick marked
and the technical flags shown. Changing a group's pick, rejecting a frame or accepting a group is one
POST, turned into pairwise preferences by :mod:`piaa.cull.feedback` and stored by one
``PreferenceStore.add_many`` (one transaction, source ``"cull"``, durable before the answer), so a
killed server loses nothing the page showed as done. Judgements name photos by absolute path, so they
match any album that holds the shoot.

"Update my profile" retrains the profile from everything in the store (collect's pairs and culling
corrections) with ``piaa.personalize``, starting from the generic model the profile carries
(``generic.safetensors``), saves it atomically over the profile (or to ``--out``), and re-ranks the
groups with it, keeping what the photographer decided. A profile trained on more judgements than the
update finds (pairs of another album, say) is kept, not replaced; the page says why and what to do.

Security is collect's (:mod:`piaa.web.security`): only the photos listed in the results are served,
each only while it still resolves to where it did at startup (:class:`piaa.web.album.ServedAlbum`);
every request that changes anything is a same-origin JSON POST; bodies are capped; only local host
names are accepted when bound locally.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from piaa.cull.feedback import GroupState, accept, choose, reject, rerank
from piaa.errors import UsageError, one_line
from piaa.preferences import Pair, PreferenceStore, normalize_name
from piaa.web.album import DISPLAY_SIDE, THUMB_SIDE, AlbumImageNotFound, ServedAlbum
from piaa.web.security import clip_name, harden

__all__ = ["SOURCE", "ReviewConfig", "Reviewer", "create_review_app", "load_results"]

STATIC = Path(__file__).parent / "static"
MAX_NAME_CHARS = 4096
SOURCE = "cull"  # the store's source of every judgement made on this page


@dataclass(frozen=True)
class XmpSettings:
    """How ``piaa cull --xmp`` wrote the sidecars, so corrections rewrite them the same way: sidecar
    ``naming`` (darktable or adobe), the labels of picks and rejects (None: none), alternates' rating."""

    naming: str = "darktable"
    pick_label: str | None = "Green"
    reject_label: str | None = "Red"
    alternate_rating: int = 0


@dataclass
class ReviewConfig:
    """What ``piaa review`` takes. ``album``: the folder ``Update my profile`` trains on (default: the
    folder holding every photo of the results); ``out``: where the updated profile goes (default: over
    ``profile``, or for a built-in profile such as ``nima-ava`` ``<store stem>-profile`` next to the
    store, as ``piaa collect`` names it). ``train_overrides``: TrainConfig fields for ``personalize``."""

    results: Path
    store: Path
    profile: str | Path
    out: Path | None = None
    album: Path | None = None
    host: str = "127.0.0.1"
    train_overrides: dict[str, Any] = field(default_factory=dict)
    xmp: XmpSettings | None = None  # rewrite the sidecars of every frame a correction changes

    def target(self) -> Path:
        """Where the retrained profile is saved (see the class docstring)."""
        if self.out is not None:
            return self.out
        if not Path(self.profile).is_dir():
            return self.store.with_name(f"{self.store.stem}-profile")
        return Path(self.profile)


@dataclass(frozen=True)
class Frame:
    """A photo of the results: album-relative ``name`` (its URL), absolute ``path``, cull score, flags."""

    name: str
    path: Path
    score: float
    flags: tuple[str, ...]
    rating: int = 0  # the cull's xmp:Rating


def photo_path(raw: str, results: Path) -> Path | None:
    """The absolute path of a photo named in ``results``, or None when it is not there. ``piaa cull``
    writes absolute paths; older results hold them as typed on its command line, relative to where it
    ran, which is not recorded: the current folder is tried first, then the results file's folder (where
    cull ran when ``--output`` was a bare file name)."""
    tried = [Path(os.path.abspath(raw))]
    if not Path(raw).is_absolute():
        tried.append(Path(os.path.abspath(Path(results).parent / raw)))
    return next((p for p in tried if p.is_file()), None)


def load_results(path: Path) -> tuple[list[list[dict[str, Any]]], int]:
    """The groups of a ``piaa cull --output F.json`` file, each its rows by rank, and ``keep`` (the
    most picks a group has). Photo paths are made absolute (:func:`photo_path`). Raises ``ValueError``
    naming the file for anything that is not such a list of rows, or a photo that is not found."""
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the cull results ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        hint = "; the review page reads JSON rows: piaa cull --output F.json, or --out DIR's cull.json"
        raise UsageError(f"{path}: not a cull results file (not JSON: {exc}){hint}") from None
    if not isinstance(rows, list) or not rows:
        raise UsageError(f"{path}: not a cull results file (expected a non-empty list of rows)")
    groups: dict[int, list[dict[str, Any]]] = {}
    for i, row in enumerate(rows, 1):
        try:
            raw = str(row["path"])
            item = {
                "path": photo_path(raw, path),
                "group": int(row["group"]),
                "rank": int(row["rank"]),
                "status": str(row["status"]),
                "score": float(row["score"]),
                "flags": tuple(str(f) for f in row.get("flags") or ()),
                "rating": int(row.get("rating") or 0),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: row {i} is not a cull row ({type(exc).__name__}: {exc})") from None
        if item["status"] not in ("pick", "alternate", "reject"):
            raise UsageError(f"{path}: row {i}: unknown status {item['status']!r}")
        if item["path"] is None:
            tried = "" if Path(raw).is_absolute() else " (tried from the current folder and the file's)"
            raise UsageError(f"{path}: row {i}: {raw}: photo not found{tried}")
        groups.setdefault(item["group"], []).append(item)
    out = [sorted(groups[g], key=lambda r: r["rank"]) for g in sorted(groups)]
    keep = max(1, max(sum(r["status"] == "pick" for r in g) for g in out))
    return out, keep


def trained_on(folder: Path) -> int:
    """How many pairs the profile saved in ``folder`` was trained on: its ``config.json``'s
    ``data.pairs_stated`` (:class:`~piaa.models.personalize.PersonalizeReport`), else the rows of its
    ``preferences.csv``; 0 where there is no profile."""
    from piaa.models.profile import PREFS, ProfileError, read_config
    from piaa.preferences import read_pairs_csv

    with contextlib.suppress(OSError, ValueError, TypeError, ProfileError):
        stated = read_config(folder).data.get("pairs_stated")
        if stated is not None:
            return int(stated)
    with contextlib.suppress(OSError, ValueError):  # a PreferenceError is a ValueError
        return len(read_pairs_csv(folder / PREFS))
    return 0


class ProfileUpdate:
    """``Update my profile`` as a background job: ``status()`` for the page, ``start()`` from a POST.
    States: ``idle``, ``running``, ``done``, ``refused`` (the profile kept, see :meth:`_refuse`),
    ``error``."""

    def __init__(self, reviewer: Reviewer) -> None:
        self.reviewer = reviewer
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"state": "idle", "message": "", "judgements": 0}
        self.profile: Any = None

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def _set(self, **kw: Any) -> None:
        with self._lock:
            self._state.update(kw)

    def start(self) -> bool:
        with self._lock:
            if self._state["state"] == "running":
                return False
            self._state = {"state": "running", "message": "training", "judgements": 0, "started": time.time()}
        threading.Thread(target=self._run, daemon=True).start()
        return True

    def _run(self) -> None:
        try:
            self._train()
        except Exception as exc:  # noqa: BLE001 - shown on the page, not lost in a thread
            traceback.print_exc()
            self._set(state="error", message=one_line(exc))

    def _refuse(self, out: Path, pairs: int, inferred: int, unmatched: int) -> bool:
        """Keep the profile at ``out`` when it was trained on more pairs than the update found: an update
        from the shoot alone would quietly replace a profile trained on a whole album with a weak one.
        Sets the state ``refused`` (the message names both counts and the remedies) and returns True."""
        before = trained_on(out)
        if pairs >= before:
            return False
        album = self.reviewer.album_root
        why = self._unused(unmatched) or f"the store holds no more for {album}"
        also = "--album FOLDER holding those photos and the shoot, or with " if unmatched else ""
        self._set(
            state="refused",
            message=f"kept {out}: it was trained on {before} judgements, this update would train on only "
            f"{pairs}; {why} (open piaa review again with {also}--out FOLDER to save this update elsewhere)",
            judgements=pairs, inferred=inferred, unmatched=unmatched, previous=before, finished=time.time(),
        )  # fmt: skip
        return True

    def _unused(self, unmatched: int) -> str:
        """What the page says of the judgements that named photos outside the album ('' for none)."""
        if not unmatched:
            return ""
        return f"not used: {unmatched} stored judgements naming photos outside {self.reviewer.album_root}"

    def _matched(self) -> tuple[int, int]:
        """The pairs and unmatched judgements an update will find, from the album's file names alone (no
        photo read, so an immediate answer): never fewer pairs than training finds."""
        from piaa.data.images import iter_image_files
        from piaa.preferences import load_statements, match_names, resolve

        album = self.reviewer.album_root
        statements = load_statements(self.reviewer.cfg.store, album)
        names = [normalize_name(os.path.abspath(f), album) for f in iter_image_files([album])]
        matched, _ = match_names(statements, names)
        return len(resolve(matched)[0]), len(statements) - len(matched)

    def _train(self) -> None:
        from piaa.models.personalize import personalize
        from piaa.models.profile import load_profile

        rv = self.reviewer
        cfg = rv.cfg
        out = cfg.target()
        pairs, unmatched = self._matched()
        if self._refuse(out, pairs, 0, unmatched):  # before minutes of training
            return
        base = load_profile(cfg.profile)
        generic = base.generic() or base  # a profile that carries no generic model: start from itself
        tmp = Path(tempfile.mkdtemp(prefix=".piaa-generic-", dir=out.parent if out.parent.is_dir() else None))
        try:
            generic.save(tmp / "generic")
            profile = personalize(
                None, rv.album_root, prefs=cfg.store, generic=tmp / "generic", progress=False,
                **cfg.train_overrides,
            )  # fmt: skip
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rep = profile.report
        if self._refuse(out, rep.pairs_stated, rep.pairs_inferred, rep.judgements_unmatched):
            return  # photos that could not be read left fewer pairs than the names promised
        profile.save(out)
        self.profile = profile
        scores = profile.report.album_scores
        if scores is None:  # not expected (the backbone is kept), but then score the shoot itself
            results = profile.score_files([f.path for f in rv.frames.values()], progress=False)
            scores = {normalize_name(str(r.path), rv.album_root): r.score for r in results}
        by_frame = {
            name: scores[key]
            for name, f in rv.frames.items()
            if (key := normalize_name(str(f.path), rv.album_root)) in scores
        }
        rv.rerank(by_frame)
        unused = self._unused(rep.judgements_unmatched)
        remedy = "open piaa review again with --album FOLDER holding those photos and the shoot"
        self._set(
            state="done",
            message=f"profile saved to {out}" + (f"; {unused} (to include them, {remedy})" if unused else ""),
            profile=str(out),
            judgements=rep.pairs_stated,
            inferred=rep.pairs_inferred,
            unmatched=rep.judgements_unmatched,
            finished=time.time(),
        )


class Reviewer:
    """The page's state: the groups (:class:`~piaa.cull.feedback.GroupState`), the photos, the store."""

    def __init__(self, cfg: ReviewConfig) -> None:
        groups, self.keep = load_results(cfg.results)
        from piaa.models.profile import ProfileError, check_save_target, list_pretrained

        if not Path(cfg.profile).is_dir() and str(cfg.profile) not in list_pretrained():
            choices = ", ".join(list_pretrained())
            raise ProfileError(f"{cfg.profile}: not a profile folder nor a built-in profile ({choices})")
        check_save_target(cfg.target())  # before the page opens, not after the photographer's work
        if not cfg.store.parent.is_dir():
            raise FileNotFoundError(f"{cfg.store.parent}: folder for the preference store not found")
        self.cfg = cfg
        paths = [r["path"] for g in groups for r in g]
        root = Path(os.path.commonpath([str(p.parent) for p in paths]))
        self.album_root = cfg.album.absolute() if cfg.album is not None else root
        if not all(p.is_relative_to(self.album_root) for p in paths):
            raise UsageError(f"--album {cfg.album}: the culled photos are not all inside it")
        self.album = ServedAlbum(root, check=False)  # cull already read every photo
        self.frames: dict[str, Frame] = {}
        self.groups: list[GroupState] = []
        self.pick_rating: list[int] = []  # the stars a new pick of the group gets in its sidecar
        for g in groups:
            names = []
            for r in g:
                name = normalize_name(r["path"].relative_to(root).as_posix())
                if name not in self.album:
                    raise UsageError(f"{cfg.results}: {r['path']}: photo not found")
                self.frames[name] = Frame(name, r["path"], r["score"], r["flags"], r["rating"])
                names.append(name)
            rejected = frozenset(n for n, r in zip(names, g, strict=True) if r["status"] == "reject")
            self.pick_rating.append(max([r["rating"] for r in g if r["status"] == "pick"] or [1]))
            order = (*(n for n in names if n not in rejected), *(n for n in names if n in rejected))
            self.groups.append(GroupState(order=order, keep=self.keep, rejected=rejected))
        self.store = PreferenceStore(cfg.store)
        self.update = ProfileUpdate(self)
        self._lock = threading.Lock()
        self.corrections = 0

    def close(self) -> None:
        self.store.close()

    # -- views -----------------------------------------------------------------------------------------

    def group_view(self, gid: int) -> dict[str, Any]:
        state = self.groups[gid]
        frames = []
        for name in state.order:
            f = self.frames[name]
            frames.append({
                "name": name, "url": self.album.url(name), "thumb": self.album.url(name, thumb=True),
                "score": round(f.score, 3), "flags": list(f.flags), "status": state.status(name),
            })  # fmt: skip
        return {"id": gid, "frames": frames, "accepted": state.accepted, "chosen": state.chosen}

    def state(self) -> dict[str, Any]:
        return {
            "groups": len(self.groups),
            "photos": len(self.frames),
            "corrections": self.corrections,
            "judgements": len(self.store),
            "by_source": self.store.sources(),
            "update": self.update.status(),
        }

    # -- actions ---------------------------------------------------------------------------------------

    def act(
        self, gid: int, action: Callable[[GroupState], tuple[GroupState, list[Pair]]]
    ) -> tuple[int, list[str]]:
        """Apply one action to a group; its pairs are durable in the store before the state changes.
        Returns how many pairs were stored and the sidecars that could not be rewritten (with why)."""
        if not 0 <= gid < len(self.groups):
            raise HTTPException(404, f"no group {gid}")
        with self._lock:
            old = self.groups[gid]
            new, pairs = action(old)
            if pairs:
                self.store.add_many([(self._stored(a), self._stored(b)) for a, b in pairs], source=SOURCE)
            self.groups[gid] = new
            self.corrections += 1
            problems = self._rewrite_sidecars(gid, old, new)
        return len(pairs), problems

    def _rewrite_sidecars(self, gid: int, old: GroupState, new: GroupState) -> list[str]:
        """With ``--xmp``: the frames whose status changed get the rating and labels ``piaa cull`` gives
        that status (a new pick the stars of the group's pick). A sidecar that cannot be merged is
        reported; the correction itself is already stored."""
        xmp = self.cfg.xmp
        if xmp is None:
            return []
        from piaa.cull.xmp import SidecarError, status_properties, write_sidecar

        problems = []
        for name in new.order:
            status = new.status(name)
            if status == old.status(name):
                continue
            rating = {"pick": self.pick_rating[gid], "alternate": xmp.alternate_rating, "reject": -1}[status]
            label, pick = status_properties(status, xmp.pick_label, xmp.reject_label)
            try:
                write_sidecar(self.frames[name].path, rating, label, pick, xmp.naming)
            except (SidecarError, OSError, ValueError) as exc:
                problems.append(one_line(exc))
        return problems

    def _stored(self, name: str) -> str:
        return self.frames[name].path.as_posix()

    def check_frame(self, gid: int, name: str) -> None:
        if not 0 <= gid < len(self.groups):
            raise HTTPException(404, f"no group {gid}")
        if name not in self.groups[gid].order:
            raise HTTPException(404, f"not a photo of group {gid}: {clip_name(name)}")

    def rerank(self, scores: dict[str, float]) -> None:
        """Re-order every group by new scores, keeping the photographer's picks and rejects."""
        with self._lock:
            for i, state in enumerate(self.groups):
                known = {n: scores.get(n, self.frames[n].score) for n in state.order}
                flagged = {n for n in state.order if self.frames[n].flags}
                self.groups[i] = rerank(state, known, flagged)
            for name, f in self.frames.items():
                if name in scores:
                    self.frames[name] = replace(f, score=scores[name])


Name = Annotated[str, Field(max_length=MAX_NAME_CHARS)]


class FrameAction(BaseModel):
    group: int
    name: Name


class GroupAction(BaseModel):
    group: int


def create_review_app(cfg: ReviewConfig, *, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The review app; ``app.state.reviewer`` holds its state. Raises ``ValueError``/``OSError`` (one
    line) for unusable results, album or store, before anything is served."""
    reviewer = Reviewer(cfg)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            reviewer.close()

    app = FastAPI(title="piaa review", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.reviewer = reviewer
    harden(app, cfg.host, allowed_hosts)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "review.html", headers={"Cache-Control": "no-cache"})

    @app.get("/img/{name:path}")
    def image(name: str, size: str = "display") -> Response:
        if name not in reviewer.frames:  # only the culled photos, never the rest of their folder
            raise HTTPException(404, "not found")
        try:
            data = reviewer.album.jpeg(name, THUMB_SIDE if size == "thumb" else DISPLAY_SIDE)
        except AlbumImageNotFound:
            raise HTTPException(404, "not found") from None
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/groups")
    def groups() -> dict[str, Any]:
        return {
            "groups": [reviewer.group_view(i) for i in range(len(reviewer.groups))],
            "state": reviewer.state(),
        }

    def answer(gid: int, done: tuple[int, list[str]]) -> dict[str, Any]:
        stored, sidecar_problems = done
        return {
            "group": reviewer.group_view(gid), "stored": stored, "sidecar_problems": sidecar_problems,
            "state": reviewer.state(),
        }  # fmt: skip

    @app.post("/api/choose")
    def choose_frame(body: FrameAction) -> dict[str, Any]:
        reviewer.check_frame(body.group, body.name)
        return answer(body.group, reviewer.act(body.group, lambda s: choose(s, body.name)))

    @app.post("/api/reject")
    def reject_frame(body: FrameAction) -> dict[str, Any]:
        reviewer.check_frame(body.group, body.name)
        return answer(body.group, reviewer.act(body.group, lambda s: reject(s, body.name)))

    @app.post("/api/accept")
    def accept_group(body: GroupAction) -> dict[str, Any]:
        return answer(body.group, reviewer.act(body.group, accept))

    @app.get("/api/update")
    def update_status() -> dict[str, Any]:
        return reviewer.update.status()

    @app.post("/api/update")
    def update_profile() -> JSONResponse:
        if len(reviewer.store) == 0:
            raise HTTPException(409, "no judgements yet: correct a pick, reject a frame or accept a group")
        started = reviewer.update.start()
        return JSONResponse(reviewer.update.status(), status_code=202 if started else 409)

    return app

"""The collect page's "what it learnt" panel: :func:`piaa.models.explain.explain_profile` on the latest
trained profile, over the album the page serves, with the example photos as the page's thumbnail URLs.

One explanation is kept per trained profile (it costs a feature pass over the judged photos), and one is
computed at a time."""

from __future__ import annotations

import threading
from typing import Any

from piaa.web.album import ServedAlbum


class Explainer:
    """Explain the page's profile; cached until the trainer replaces the profile."""

    def __init__(self, album: ServedAlbum) -> None:
        self.album = album
        self._lock = threading.Lock()
        self._cached: tuple[Any, dict[str, Any]] | None = None

    def explain(self, profile: Any) -> dict[str, Any]:
        """:meth:`Explanation.to_dict` plus ``thumbs``: album name -> thumbnail URL of every example
        photo. Raises ``ExplainError`` (no judgements, photos gone)."""
        from piaa.models.explain import explain_profile

        with self._lock:
            if self._cached is not None and self._cached[0] is profile:
                return self._cached[1]
            exp = explain_profile(profile, album=self.album.root)
            out = exp.to_dict()
            names = {n for a in exp.axes for n in (*a.high, *a.low)}
            out["thumbs"] = {n: ServedAlbum.url(n, thumb=True) for n in sorted(names)}
            self._cached = (profile, out)
            return out

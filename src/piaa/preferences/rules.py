"""What a preference is and what follows from a set of them: pairs, judgements, contradictions, transitivity.

Rules (section 3.1 of the paper, plus what a long-lived store needs):

* A *pair* is ``(preferred, other)``: two strings naming images. Names are paths relative to the album
  folder with POSIX separators (``"2023/beach.jpg"``); images outside the album are named by their
  absolute path. A pair never names the same image twice.
* A *judgement* is one statement of a pair, with its time and source. Judgements are only ever
  appended (or the latest one removed by ``undo``), so their ids give their order.
* Contradictions: when the same two images were judged both ways, the **latest** statement wins (the
  person changed their mind) and the earlier opposite statements are ignored; exact repeats collapse
  into one pair. The effective pairs keep the order in which each pair of images was *first* judged, so
  appending statements never reorders earlier pairs. ``resolve`` also reports every contradiction.
* Transitivity is the paper's one step, exactly: from stated ``a>b`` and stated ``b>c`` infer ``a>c``.
  Inferred pairs are never used to infer more (``a>b, b>c, c>d`` gives ``a>c`` and ``b>d`` but not
  ``a>d``). A pair is not inferred if it, or its reverse, is stated, or if it names one image twice.
  When the stated pairs contain a cycle long enough to infer both ``a>c`` and ``c>a``, the evidence is
  ambiguous and both are dropped.
"""

from __future__ import annotations

import itertools
import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from piaa.errors import PreferenceError, UsageError

__all__ = [
    "Contradiction",
    "Judgement",
    "Pair",
    "PreferenceError",
    "check_pair",
    "enrich_transitive",
    "enrich_transitive_with_sources",
    "infer_transitive",
    "match_names",
    "normalize_name",
    "resolve",
]

Pair = tuple[str, str]


@dataclass(frozen=True)
class Judgement:
    """One stated preference as stored; ``id`` increases with time and is never reused."""

    id: int
    preferred: str
    other: str
    created: float
    source: str

    @property
    def pair(self) -> Pair:
        return (self.preferred, self.other)


@dataclass(frozen=True)
class Contradiction:
    """Two images judged both ways; ``winner`` is the latest statement, the effective pair.

    ``winner_ref`` and ``overruled`` are judgement ids, or 0-based positions in the input when
    ``resolve`` was given plain pairs.
    """

    winner: Pair
    winner_ref: int
    overruled: tuple[int, ...]

    @property
    def loser(self) -> Pair:
        return (self.winner[1], self.winner[0])


# ------------------------------------------------------------------------------------------- names


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def normalize_name(name: str, album: str | os.PathLike[str] | None = None) -> str:
    """Canonical image name, so the same file is one name however a person or a file system wrote it.

    Surrounding whitespace is dropped (``"a.jpg, b.jpg"`` in a CSV) and Unicode is NFC-composed (macOS
    writes accents decomposed, most editors composed). Without an album, names are then only cleaned
    (POSIX separators, no ``.`` parts). With one, relative names are taken relative to the album, and
    anything inside the album becomes album-relative while anything outside becomes absolute. Symlinks
    are not resolved, so names survive moving the album. This is the one place names are made
    comparable: the store, the CSV reader, ``match_names``, personalization and the web app all use it.
    Raises ``PreferenceError`` for an empty (or all-blank) or non-string name.
    """
    if not isinstance(name, str) or not name.strip():
        raise PreferenceError(f"image name must be a non-empty string, got {name!r}")
    path = Path(_nfc(name.strip()))
    if album is None:
        return path.as_posix()
    root = Path(os.path.abspath(_nfc(os.fspath(album))))
    full = Path(os.path.normpath(root / path))  # root / absolute == absolute
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return full.as_posix()


def match_names(
    statements: Iterable[Pair],
    album_names: Iterable[str],
    *,
    album: str | os.PathLike[str] | None = None,
) -> tuple[list[Pair], list[str]]:
    """Split preference statements into those naming two album photos and the names that match none.

    Both sides go through ``normalize_name`` (relative to ``album`` when given, so absolute paths inside
    it match album-relative names), so whitespace, Unicode normal form and ``./`` do not matter.
    Returns ``(matched_pairs, unmatched_names)``: the matched pairs in input order (repeats and
    contradictions kept, for ``resolve``), each name spelled exactly as in ``album_names`` so callers
    can index their file list with it; and the distinct statement names not in the album, in order of
    first mention (normalised), for a message such as "3 judgements name photos not in the album".
    A statement name that cannot be a file name (blank) is unmatched, as given; a pair whose two names
    are one album photo is dropped. Raises ``PreferenceError`` for a blank album name.
    """
    lookup: dict[str, str] = {}
    for name in album_names:
        lookup.setdefault(normalize_name(name, album), name)
    matched: list[Pair] = []
    unmatched: dict[str, None] = {}
    for pair in statements:
        found: list[str] = []
        for raw in pair:
            try:
                name = normalize_name(raw, album)
            except PreferenceError:
                name = raw
            if name in lookup:
                found.append(lookup[name])
            else:
                unmatched.setdefault(name)
        if len(found) == 2 and found[0] != found[1]:
            matched.append((found[0], found[1]))
    return matched, list(unmatched)


def check_pair(preferred: object, other: object) -> Pair:
    """``(preferred, other)`` if both are non-empty strings naming two images, else ``ValueError``."""
    if not isinstance(preferred, str) or not isinstance(other, str) or not preferred or not other:
        raise UsageError(f"a pair needs two non-empty strings, got ({preferred!r}, {other!r})")
    if preferred == other:
        raise UsageError(f"an image cannot be preferred over itself: {preferred!r}")
    return (preferred, other)


# ---------------------------------------------------------------------------------- contradictions


def resolve(judgements: Iterable[Judgement | Pair]) -> tuple[list[Pair], list[Contradiction]]:
    """Apply the latest-statement-wins rule; returns effective pairs and the contradictions found.

    Judgements are taken in the order given (for a store: id order). Self-pairs raise ``ValueError``.
    """
    first_seen: dict[frozenset[str], int] = {}  # unordered pair -> rank of its first mention
    latest: dict[frozenset[str], tuple[Pair, int]] = {}  # unordered pair -> (pair, ref) latest
    history: dict[frozenset[str], list[tuple[Pair, int]]] = {}
    for position, item in enumerate(judgements):
        if isinstance(item, Judgement):
            pair, ref = check_pair(item.preferred, item.other), item.id
        else:
            pair, ref = check_pair(*item), position
        key = frozenset(pair)
        first_seen.setdefault(key, len(first_seen))
        latest[key] = (pair, ref)
        history.setdefault(key, []).append((pair, ref))
    pairs: list[Pair] = []
    contradictions: list[Contradiction] = []
    for key in first_seen:  # dicts keep insertion order == order of first mention
        winner, winner_ref = latest[key]
        pairs.append(winner)
        overruled = tuple(ref for pair, ref in history[key] if pair != winner)
        if overruled:
            contradictions.append(Contradiction(winner, winner_ref, overruled))
    return pairs, contradictions


# ------------------------------------------------------------------------------------ transitivity


def infer_transitive(pairs: Iterable[Pair]) -> dict[Pair, tuple[str, ...]]:
    """Pairs implied by two stated pairs (paper, section 3.1), each mapped to the images ``b`` that
    support it (sorted).

    Inference never uses inferred pairs, so every inferred ``a>c`` rests on stated ``a>b`` and ``b>c``
    for each listed ``b`` and on nothing else. Self-pairs raise ``ValueError``.
    """
    stated: dict[Pair, None] = {}
    for p in pairs:
        stated.setdefault(check_pair(*p))
    successors: dict[str, list[str]] = {}
    for a, b in stated:
        successors.setdefault(a, []).append(b)
    support: dict[Pair, set[str]] = {}
    for a, b in stated:
        for c in successors.get(b, ()):
            if a == c or (a, c) in stated or (c, a) in stated:
                continue
            support.setdefault((a, c), set()).add(b)
    ambiguous = {p for p in support if (p[1], p[0]) in support}
    return {p: tuple(sorted(bs)) for p, bs in sorted(support.items()) if p not in ambiguous}


def enrich_transitive(pairs: Iterable[Pair]) -> list[Pair]:
    """Stated pairs (deduplicated, in order) followed by the one-step transitive pairs, sorted."""
    return [pair for pair, _ in enrich_transitive_with_sources(pairs)]


def enrich_transitive_with_sources(pairs: Iterable[Pair]) -> list[tuple[Pair, tuple[Pair, ...]]]:
    """Like ``enrich_transitive``, with the stated pairs behind each pair, so training can weigh them.

    A stated pair has no sources (``()``); an inferred ``a>c`` lists ``(a, b), (b, c)`` for each
    supporting ``b``.
    """
    stated = list(dict.fromkeys(check_pair(*p) for p in pairs))
    out: list[tuple[Pair, tuple[Pair, ...]]] = [(p, ()) for p in stated]
    for (a, c), middles in infer_transitive(stated).items():
        out.append(((a, c), tuple(itertools.chain.from_iterable(((a, b), (b, c)) for b in middles))))
    return out

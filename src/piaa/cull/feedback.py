"""Culling corrections as pairwise preferences: what a pick, a reject or an accepted group tells us.

A group is shown best first. Each action of the photographer returns the group's new state and the
pairs ``(preferred, other)`` it states, which the review page stores as one transaction (source
``"cull"``) for ``piaa personalize`` to learn from:

- **choose** a frame as the pick: it is preferred over every frame that was ranked above it (those the
  photographer looked past); frames below it say nothing new, the ranking already put them there.
- **reject** a frame: every other frame of the group that is not rejected is preferred over it.
- **accept** the group: its picks are preferred over every alternate. Acceptance adds pairs on purpose:
  corrections alone are a biased sample (only the groups the model got wrong), and a model fine-tuned
  on them only is free to break the groups it had right; accepted groups pin those down, and they give
  ``fit_personal``'s held-out check pairs on which "the model was already right" counts.
  ``docs/benchmarks/cull-feedback.md`` measures both choices.

Every pair an action returns agrees with the order of the state it returns (a pair's preferred frame
is shown before its other), which the property tests check. Pure functions: nothing here touches a
store or a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from piaa.errors import UsageError
from piaa.preferences import Pair

__all__ = ["GroupState", "accept", "choose", "rerank", "reject"]


@dataclass(frozen=True)
class GroupState:
    """One group as the review page shows it.

    ``order``: every frame, best first, rejected frames last. ``keep``: how many of the first frames
    that are not rejected are picks (``piaa cull --keep``; at least 1). ``rejected``: frames the
    photographer rejected. ``chosen``: the frame they picked themselves (kept first by ``rerank``),
    ``accepted``: whether they accepted the group. Raises ``ValueError`` for repeated frames, a
    rejected frame outside the group or ``keep < 1``.
    """

    order: tuple[str, ...]
    keep: int = 1
    rejected: frozenset[str] = field(default_factory=frozenset)
    chosen: str | None = None
    accepted: bool = False

    def __post_init__(self) -> None:
        if len(set(self.order)) != len(self.order):
            raise UsageError(f"a group lists a frame twice: {list(self.order)}")
        if not self.rejected <= set(self.order):
            raise UsageError(f"rejected frames not in the group: {sorted(self.rejected - set(self.order))}")
        if self.keep < 1:
            raise UsageError(f"keep must be at least 1, got {self.keep}")
        if self.chosen is not None and (self.chosen not in self.order or self.chosen in self.rejected):
            raise UsageError(f"chosen frame {self.chosen!r} is not a kept frame of the group")

    @property
    def kept(self) -> list[str]:
        """Frames not rejected, in order."""
        return [f for f in self.order if f not in self.rejected]

    @property
    def picks(self) -> list[str]:
        return self.kept[: self.keep]

    def status(self, frame: str) -> str:
        """``"pick"``, ``"alternate"`` or ``"reject"`` (the statuses of ``piaa cull``'s rows)."""
        if frame in self.rejected:
            return "reject"
        return "pick" if frame in self.picks else "alternate"


def _check(state: GroupState, frame: str) -> None:
    if frame not in state.order:
        raise UsageError(f"{frame!r} is not a frame of this group")


def _arrange(kept: list[str], rejected: Iterable[str], order: tuple[str, ...]) -> tuple[str, ...]:
    rej = set(rejected)
    return (*kept, *(f for f in order if f in rej))


def choose(state: GroupState, frame: str) -> tuple[GroupState, list[Pair]]:
    """Make ``frame`` the group's first pick: preferred over each frame that was ranked above it.

    A rejected frame chosen is un-rejected, and preferred over every frame shown above it (the kept
    ones and those rejected after it). Choosing the frame that is already first states nothing.
    Raises ``ValueError`` for a frame outside the group.
    """
    _check(state, frame)
    kept = state.kept
    above = state.order[: state.order.index(frame)]
    rejected = state.rejected - {frame}
    new_kept = [frame, *(f for f in kept if f != frame)]
    new = replace(
        state, order=_arrange(new_kept, rejected, state.order), rejected=rejected, chosen=frame,
        accepted=False,
    )  # fmt: skip
    return new, [(frame, other) for other in above]


def reject(state: GroupState, frame: str) -> tuple[GroupState, list[Pair]]:
    """Reject ``frame``: every other kept frame of the group is preferred over it; it moves last.

    Rejecting a frame already rejected states nothing. Raises ``ValueError`` for a frame outside the
    group.
    """
    _check(state, frame)
    if frame in state.rejected:
        return state, []
    others = [f for f in state.kept if f != frame]
    rejected = state.rejected | {frame}
    order = (*others, frame, *(f for f in state.order if f in state.rejected))
    chosen = None if state.chosen == frame else state.chosen
    new = replace(state, order=order, rejected=rejected, chosen=chosen, accepted=False)
    return new, [(other, frame) for other in others]


def accept(state: GroupState) -> tuple[GroupState, list[Pair]]:
    """Accept the group as shown: each pick is preferred over each alternate (rejects are already
    below everything). Accepting twice states nothing the second time."""
    if state.accepted:
        return state, []
    picks, kept = state.picks, state.kept
    pairs = [(p, other) for p in picks for other in kept[len(picks) :]]
    return replace(state, accepted=True), pairs


def rerank(state: GroupState, scores: Mapping[str, float], flagged: Iterable[str] = ()) -> GroupState:
    """The group re-ordered by new scores (a retrained profile), keeping what the photographer decided.

    Kept frames go by score, highest first, with flagged frames (blurred, clipped, eyes closed) after
    every unflagged one, as ``piaa cull`` ranks them; the photographer's own pick stays first and their
    rejects stay last. Ties keep the current order. Raises ``KeyError`` for a kept frame without a score.
    """
    flag = set(flagged)
    position = {f: i for i, f in enumerate(state.order)}
    kept = sorted(state.kept, key=lambda f: (f in flag, -scores[f], position[f]))
    if state.chosen is not None:
        kept = [state.chosen, *(f for f in kept if f != state.chosen)]
    return replace(state, order=_arrange(kept, state.rejected, state.order))

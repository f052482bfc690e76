"""The rules turning culling corrections into pairwise preferences, checked on random groups and actions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piaa.cull.feedback import GroupState, accept, choose, reject, rerank
from piaa.preferences import resolve


@st.composite
def groups(draw: st.DrawFn) -> GroupState:
    n = draw(st.integers(1, 8))
    frames = [f"f{i}.jpg" for i in draw(st.permutations(range(n)))]
    rejected = frozenset(draw(st.lists(st.sampled_from(frames), max_size=n, unique=True)))
    kept = [f for f in frames if f not in rejected]
    order = (*kept, *(f for f in frames if f in rejected))
    return GroupState(order=order, keep=draw(st.integers(1, 3)), rejected=rejected)


actions = st.lists(st.tuples(st.sampled_from(["choose", "reject", "accept"]), st.integers(0, 7)), max_size=12)


def apply(state: GroupState, action: str, k: int) -> tuple[GroupState, list]:
    frame = state.order[k % len(state.order)]
    if action == "choose":
        return choose(state, frame)
    if action == "reject":
        return reject(state, frame)
    return accept(state)


def invariants(old: GroupState, new: GroupState, pairs: list) -> None:
    assert sorted(new.order) == sorted(old.order)  # a permutation: nothing lost, nothing added
    assert list(new.order) == new.kept + [f for f in new.order if f in new.rejected]  # rejects last
    pos = {f: i for i, f in enumerate(new.order)}
    for a, b in pairs:
        assert a != b and a in pos and b in pos
        assert pos[a] < pos[b]  # what is stored agrees with what is shown
    assert len(set(pairs)) == len(pairs)


@given(groups(), st.data())
def test_choose_prefers_the_frame_over_each_frame_that_was_above_it(state, data):
    frame = data.draw(st.sampled_from(state.order))
    new, pairs = choose(state, frame)
    invariants(state, new, pairs)
    above = state.order[: state.order.index(frame)]  # kept frames, and rejects shown above a reject
    assert pairs == [(frame, other) for other in above]
    assert set(above) >= (set(state.kept) if frame in state.rejected else set())
    assert new.order[0] == frame and new.chosen == frame and frame not in new.rejected
    assert new.status(frame) == "pick"
    # the frames below it keep their order
    assert [f for f in new.kept if f != frame] == [f for f in state.kept if f != frame]


@given(groups(), st.data())
def test_reject_puts_the_frame_below_every_other_kept_frame(state, data):
    frame = data.draw(st.sampled_from(state.order))
    new, pairs = reject(state, frame)
    invariants(state, new, pairs)
    assert frame in new.rejected and new.status(frame) == "reject"
    if frame in state.rejected:
        assert pairs == [] and new == state
    else:
        assert sorted(pairs) == sorted((o, frame) for o in state.kept if o != frame)
        assert new.kept == [f for f in state.kept if f != frame]


@given(groups())
def test_accept_confirms_each_pick_over_each_alternate_once(state):
    new, pairs = accept(state)
    invariants(state, new, pairs)
    picks = state.kept[: state.keep]
    alternates = state.kept[state.keep :]
    assert len(pairs) == len(picks) * len(alternates)
    assert {a for a, _ in pairs} <= set(picks) and {b for _, b in pairs} == set(alternates)
    again, more = accept(new)
    assert more == [] and again == new


@given(groups(), actions)
def test_any_sequence_of_actions_keeps_the_invariants_and_the_last_word_wins(state, steps):
    stated = []
    for action, k in steps:
        new, pairs = apply(state, action, k)
        invariants(state, new, pairs)
        stated += pairs
        state = new
    # with the store's rule (the latest statement about a pair wins), what the store holds agrees with
    # the order the page ends up showing, whatever the photographer did on the way
    pos = {f: i for i, f in enumerate(state.order)}
    assert all(pos[a] < pos[b] for a, b in resolve(stated)[0])


def test_choose_then_accept_and_a_worked_example():
    state = GroupState(order=("a", "b", "c", "d"))
    state, pairs = choose(state, "c")
    assert pairs == [("c", "a"), ("c", "b")] and state.order == ("c", "a", "b", "d")
    state, pairs = reject(state, "a")
    assert pairs == [("c", "a"), ("b", "a"), ("d", "a")] and state.order == ("c", "b", "d", "a")
    state, pairs = accept(state)
    assert pairs == [("c", "b"), ("c", "d")]
    assert [state.status(f) for f in state.order] == ["pick", "alternate", "alternate", "reject"]


def test_rerank_follows_new_scores_but_keeps_the_photographers_decisions():
    state = GroupState(order=("a", "b", "c", "d"))
    scores = {"a": 1.0, "b": 5.0, "c": 3.0, "d": 9.0}
    assert rerank(state, scores).order == ("d", "b", "c", "a")
    assert rerank(state, scores, flagged={"d"}).order == ("b", "c", "a", "d")  # flagged never wins
    chosen, _ = choose(state, "a")
    rejected, _ = reject(chosen, "d")
    assert rerank(rejected, scores).order == ("a", "b", "c", "d")  # own pick first, reject last


@pytest.mark.parametrize(
    "kwargs",
    [{"order": ("a", "a")}, {"order": ("a",), "rejected": frozenset({"b"})}, {"order": ("a",), "keep": 0}],
)
def test_malformed_groups_are_refused(kwargs):
    with pytest.raises(ValueError):
        GroupState(**kwargs)


def test_a_frame_outside_the_group_is_refused():
    with pytest.raises(ValueError, match="not a frame"):
        choose(GroupState(order=("a", "b")), "z")

"""History: time order, ages, recency rows, transitions and temporal cuts."""

from __future__ import annotations

import torch

from kgrec.data.history import History

# user 0: items 3 (t=30), 1 (t=10), 2 (t=20) -> order 1, 2, 3; user 1: untimed 0, 4; user 2: none
EDGES = torch.tensor([[0, 0, 0, 1, 1], [3, 1, 2, 0, 4]])
TIME = torch.tensor([30, 10, 20, -1, -1])


def history() -> History:
    return History.from_edges(EDGES, TIME, num_users=3, num_items=5)


def test_items_are_time_ordered_with_ages_from_the_latest() -> None:
    h = history()
    assert h.ptr.tolist() == [0, 3, 5, 5]
    assert h.item[:3].tolist() == [1, 2, 3]
    assert h.age[:3].tolist() == [2, 1, 0]
    assert h.age[3:].tolist() == [0, 0]  # untimed rows: no order, no decay
    assert h.degree().tolist() == [3, 2, 0]


def test_rows_are_decay_weighted() -> None:
    rows = history().rows(torch.tensor([0, 1, 2]), decay=0.5)
    assert rows.shape == (3, 5)
    assert torch.allclose(rows[0], torch.tensor([0.0, 0.25, 0.5, 1.0, 0.0]))
    assert torch.allclose(rows[1], torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0]))
    assert rows[2].sum() == 0


def test_transitions_link_each_item_to_earlier_ones_of_the_same_user() -> None:
    row, item, weight, target = history().transitions(window=2, decay=0.5)
    pairs = {(int(target[r]), int(i), float(w)) for r, i, w in zip(row, item, weight, strict=True)}
    # user 0: 1 -> 2, 2 -> 3 (lag 1, weight 1) and 1 -> 3 (lag 2, weight 0.5); untimed: none
    assert pairs == {(2, 1, 1.0), (3, 2, 1.0), (3, 1, 0.5)}


def test_cut_splits_each_user_into_prefix_and_next_item() -> None:
    h = History.from_edges(
        torch.tensor([[0] * 6, list(range(6))]), torch.arange(6), num_users=1, num_items=6
    )
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(50):
        cut = h.cut(torch.tensor([0]), generator, num_targets=1)
        prefix = cut.prefix.item.tolist()
        c = len(prefix)
        assert 1 <= c <= 5
        assert prefix == list(range(c))  # the earliest c items
        assert cut.prefix.age.tolist() == list(range(c - 1, -1, -1))
        assert cut.target_item.tolist() == [c]  # the next one
        seen.add(c)
    assert seen == {1, 2, 3, 4, 5}  # every cut point is drawn


def test_cut_skips_users_with_fewer_than_two_items() -> None:
    cut = history().cut(torch.tensor([2, 0]), torch.Generator().manual_seed(1))
    assert cut.users.tolist() == [0]
    assert cut.targets(5).sum() == 1

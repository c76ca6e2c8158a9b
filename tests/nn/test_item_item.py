"""Closed-form item-item models against direct formulas on tiny data."""

from __future__ import annotations

import pytest
import torch

from kgrec.data.history import History
from kgrec.errors import KgrecError
from kgrec.nn import item_item
from kgrec.nn.item_item import ItemItem

EDGES = torch.tensor([[0, 0, 1, 1, 1, 2, 2, 3], [0, 1, 0, 1, 2, 2, 3, 3]])
TIME = torch.tensor([1, 2, 1, 2, 3, 1, 2, 1])


def history() -> History:
    return History.from_edges(EDGES, TIME, num_users=4, num_items=4)


def binary() -> torch.Tensor:
    x = torch.zeros(4, 4, dtype=torch.float64)
    x[EDGES[0], EDGES[1]] = 1
    return x


def test_ease_matches_the_closed_form() -> None:
    x = binary()
    p = torch.linalg.inv(x.t() @ x + 3.0 * torch.eye(4, dtype=torch.float64))
    expected = torch.eye(4, dtype=torch.float64) - p / p.diagonal()
    expected.fill_diagonal_(0)
    assert torch.allclose(item_item.ease(history(), 3.0).double(), expected, atol=1e-5)
    with pytest.raises(KgrecError, match="positive l2"):
        item_item.ease(history(), 0.0)


def test_ease_with_items_nobody_chose_equals_the_full_closed_form() -> None:
    # items 1 and 4 have no interaction: the solve skips them, the answer must not change
    edges = torch.tensor([[0, 0, 1, 1, 2, 2, 3], [0, 2, 0, 3, 2, 3, 5]])
    hist = History.from_edges(edges, torch.zeros(7, dtype=torch.long), num_users=4, num_items=6)
    x = torch.zeros(4, 6, dtype=torch.float64)
    x[edges[0], edges[1]] = 1
    p = torch.linalg.inv(x.t() @ x + 2.0 * torch.eye(6, dtype=torch.float64))
    expected = torch.eye(6, dtype=torch.float64) - p / p.diagonal()
    expected.fill_diagonal_(0)
    w = item_item.ease(hist, 2.0)
    assert w.shape == (6, 6)
    assert torch.allclose(w.double(), expected, atol=1e-6)
    assert not w[[1, 4]].any() and not w[:, [1, 4]].any()
    assert w[0].abs().sum() > 0


def test_ease_float32_solve_of_large_catalogues_agrees_with_float64(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gen = torch.Generator().manual_seed(0)
    pairs = torch.randint(0, 300 * 200, (6000,), generator=gen).unique()
    edges = torch.stack([pairs // 200, pairs % 200])
    hist = History.from_edges(edges, torch.zeros(pairs.numel(), dtype=torch.long), 300, 200)
    exact = item_item.ease(hist, 10.0)  # the smallest penalty a shipped config tries (demo)
    monkeypatch.setattr(item_item, "FLOAT32_SOLVE_ITEMS", 100)  # 200 active items: float32
    fast = item_item.ease(hist, 10.0)
    assert fast.dtype == torch.float32 and not fast.diagonal().any()
    assert (fast - exact).abs().max() <= 1e-5 * exact.abs().max()
    assert torch.equal(exact.topk(10, dim=1).indices, fast.topk(10, dim=1).indices)


def test_rp3beta_is_a_popularity_penalised_random_walk() -> None:
    x = binary()
    p_ui = x / x.sum(1, keepdim=True)
    p_iu = x.t() / x.t().sum(1, keepdim=True)
    expected = (p_iu @ p_ui) / x.sum(0) ** 0.5
    expected.fill_diagonal_(0)
    assert torch.allclose(item_item.rp3beta(history(), 1.0, 0.5).double(), expected, atol=1e-6)


def test_itemknn_keeps_k_neighbours_per_target() -> None:
    w = item_item.itemknn(history(), k=1, shrink=0.0)
    assert ((w > 0).sum(0) <= 1).all()
    x = binary()
    cosine = (x.t() @ x)[0, 1] / (x[:, 0].sum() * x[:, 1].sum()).sqrt()
    assert w[0, 1] == pytest.approx(float(cosine)) or w[0, 1] == 0


def test_itemknn_keeps_each_targets_k_most_similar_sources() -> None:
    gen = torch.Generator().manual_seed(0)
    users, items = 40, 12
    pairs = torch.nonzero(torch.rand(users, items, generator=gen) < 0.4).t()
    h = History.from_edges(pairs, None, num_users=users, num_items=items)
    x = torch.zeros(users, items)
    x[pairs[0], pairs[1]] = 1.0
    g = x.t() @ x
    norm = g.diagonal().sqrt()
    cosine = g / (norm.unsqueeze(1) * norm.unsqueeze(0) + 5.0)
    cosine.fill_diagonal_(0.0)
    w = item_item.itemknn(h, k=3, shrink=5.0)
    for target in range(items):  # column i keeps the 3 largest S[j, i], nothing else
        kept = w[:, target]
        assert int((kept != 0).sum()) <= 3
        best = cosine[:, target].topk(3).values
        assert torch.allclose(kept.sort(descending=True).values[:3], best)
    shared = item_item.gram(h).float()
    assert torch.equal(item_item.itemknn(h, k=3, shrink=5.0, g=shared), w)
    assert torch.equal(shared, item_item.gram(h).float())  # the shared Gram is left as it was


def test_transition_learns_what_comes_next() -> None:
    # everyone goes 0 -> 1 -> 2: item 0's strongest successor is 1, item 1's is 2
    edges = torch.tensor([[u for u in range(5) for _ in range(3)], [0, 1, 2] * 5])
    h = History.from_edges(edges, torch.tensor([1, 2, 3] * 5), num_users=5, num_items=4)
    w = item_item.transition(h, l2=1.0, window=1, decay=1.0)
    assert int(w[0].argmax()) == 1
    assert int(w[1].argmax()) == 2
    assert w[:, 3].abs().max() < 1e-6  # nobody reaches item 3


def test_entity_similarity_links_items_through_shared_entities() -> None:
    item_entity = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 2]])  # items 0, 1 share entity 0
    w = item_item.entity_similarity(item_entity, num_items=4, num_entities=3)
    assert w[0, 1] > 0 and w[1, 0] == w[0, 1]
    assert w[0, 2] == 0 and w[2, 3] == 0  # entities with one item link nothing
    assert w.diagonal().abs().sum() == 0


def test_text_similarity_keeps_the_nearest_items() -> None:
    text = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    w = item_item.text_similarity(text, k=1)
    assert w[1, 0] > 0 and w[0, 1] > 0 and w[3, 2] > 0
    assert w[2, 0] == 0 and w.diagonal().abs().sum() == 0


# dense rows x dense W (4 items), sparse rows x dense W (400), sparse rows x sparse W (5000)
@pytest.mark.parametrize("num_items", [4, 400, 5000])
def test_item_item_scores_are_decayed_rows_times_weights(num_items: int) -> None:
    h = History.from_edges(EDGES, TIME, num_users=4, num_items=num_items)
    density = h.select(torch.arange(4)).item.numel() / (4 * num_items)
    assert (density > item_item.SPARSE_ROWS_DENSITY) == (num_items == 4)
    weight = torch.zeros(num_items, num_items)
    weight[:4, :4] = torch.rand(4, 4, generator=torch.Generator().manual_seed(0))
    model = ItemItem.from_dense(weight, decay=0.5)
    users = torch.arange(4)
    expected = h.rows(users, 0.5) @ weight
    assert torch.allclose(model.score(h.select(users)), expected, atol=1e-6)
    restored = ItemItem.from_state(model.state())
    assert torch.allclose(restored.score(h.select(users)), expected, atol=1e-6)


def test_pruning_keeps_the_k_largest_weights_per_source() -> None:
    weight = torch.tensor([[0.0, 3.0, 1.0, 2.0], [1.0, 0.0, 5.0, 4.0], [0, 0, 0, 0], [1, 1, 1, 0]])
    model = ItemItem.from_dense(weight.float(), 1.0, k=2)
    dense = model.weight.to_dense()
    assert dense[0].tolist() == [0.0, 3.0, 0.0, 2.0]
    assert dense[1].tolist() == [0.0, 0.0, 5.0, 4.0]

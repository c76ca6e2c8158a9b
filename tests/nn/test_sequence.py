"""SASRec: right-aligned sequences, causal attention, and it learns an order."""

from __future__ import annotations

import torch

from kgrec.data.history import History
from kgrec.nn.sequence import PAD, SASRec, sequences


def history_of(rows: list[list[int]], num_items: int) -> History:
    """One user per row, items in time order."""
    users = [u for u, row in enumerate(rows) for _ in row]
    items = [i for row in rows for i in row]
    times = [t for row in rows for t in range(len(row))]
    edges = torch.tensor([users, items])
    return History.from_edges(edges, torch.tensor(times), len(rows), num_items)


def test_sequences_are_the_latest_items_right_aligned() -> None:
    history = history_of([[3, 1, 4, 1, 5], [2], [0, 6]], num_items=7)
    tokens = sequences(history, torch.tensor([0, 1, 2]), 3)
    assert tokens.tolist() == [[5, 2, 6], [PAD, PAD, 3], [PAD, 1, 7]]  # item i is token i + 1
    assert sequences(history, torch.tensor([2, 0]), 6).tolist() == [
        [PAD, PAD, PAD, PAD, 1, 7],
        [PAD, 4, 2, 5, 2, 6],
    ]


def test_attention_is_causal_and_padding_carries_nothing() -> None:
    torch.manual_seed(0)
    model = SASRec(num_items=10, embedding_dim=16, max_len=6).eval()
    tokens = torch.tensor([[0, 0, 3, 4, 5, 6]])
    later_changed = torch.tensor([[0, 0, 3, 4, 9, 2]])
    with torch.no_grad():
        a, b = model(tokens), model(later_changed)
        assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)  # positions 0..3 never see 4, 5
        assert not torch.allclose(a[:, 4:], b[:, 4:])
        # the same sequence scored through a shorter window keeps its scores
        assert torch.allclose(model.score(tokens), model.score(tokens[:, 2:]), atol=1e-5)
    assert model.score(tokens).shape == (1, 10)


def test_it_learns_which_item_comes_next() -> None:
    """Every user walks the items in the same cyclic order from a random start, for a random
    number of steps: only order tells the next item (each item is about equally frequent and
    co-occurs with the others). Trained on each walk but its last item, it must name that one."""
    num_items, generator = 12, torch.Generator().manual_seed(0)
    starts = torch.randint(num_items, (64,), generator=generator).tolist()
    lengths = torch.randint(4, 9, (64,), generator=generator).tolist()
    walks = [[(s + k) % num_items for k in range(n)] for s, n in zip(starts, lengths, strict=True)]
    history = history_of([walk[:-1] for walk in walks], num_items)
    torch.manual_seed(0)
    model = SASRec(num_items, embedding_dim=32, num_layers=1, max_len=8, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    tokens = sequences(history, torch.arange(64), 9)
    first = float(model.loss(tokens).detach())
    for _ in range(150):
        loss = model.loss(tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.1 * first
    model.eval()
    top = model.score(sequences(history, torch.arange(64), 8)).argmax(-1)
    assert top.tolist() == [walk[-1] for walk in walks]

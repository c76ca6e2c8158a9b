"""LazyAdam: torch's SparseAdam update, row by row."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kgrec.errors import KgrecError
from kgrec.train.optim import LazyAdam, Optimizers


def test_lazy_adam_follows_sparse_adam_step_for_step() -> None:
    torch.manual_seed(0)
    ours, theirs = nn.Embedding(50, 8, sparse=True), nn.Embedding(50, 8, sparse=True)
    theirs.load_state_dict(ours.state_dict())
    opt_ours = LazyAdam(ours.parameters(), lr=0.01)
    opt_theirs = torch.optim.SparseAdam(theirs.parameters(), lr=0.01)
    target = torch.randn(50, 8)
    for step in range(20):
        rows = torch.randint(0, 50, (12,))  # repeats: the gradient is coalesced
        for table, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            ((table(rows) - target[rows]) ** 2).sum().backward()
            opt.step()
        torch.testing.assert_close(ours.weight, theirs.weight, msg=f"step {step}")


def test_rows_without_a_gradient_keep_weights_and_moments() -> None:
    table = nn.Embedding(10, 4, sparse=True)
    before = table.weight.detach().clone()
    opt = LazyAdam(table.parameters(), lr=0.1)
    table(torch.tensor([1, 3])).sum().backward()
    opt.step()
    changed = (table.weight.detach() != before).any(1)
    assert changed.nonzero().flatten().tolist() == [1, 3]
    moments = opt.state[table.weight]["exp_avg"].abs().sum(1)
    assert moments.nonzero().flatten().tolist() == [1, 3]
    state = opt.state_dict()  # a plain state dict: checkpoints resume it
    again = LazyAdam(table.parameters(), lr=0.1)
    again.load_state_dict(state)
    assert torch.equal(
        again.state[table.weight]["exp_avg_sq"], opt.state[table.weight]["exp_avg_sq"]
    )


def test_dense_gradients_are_refused() -> None:
    table = nn.Embedding(10, 4)
    table(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        LazyAdam(table.parameters()).step()


def test_optimizers_step_and_save_as_one_and_refuse_another_state() -> None:
    table, linear = nn.Embedding(10, 4, sparse=True), nn.Linear(4, 1)
    both = Optimizers(LazyAdam(table.parameters()), torch.optim.Adam(linear.parameters()))
    before = [p.detach().clone() for p in (table.weight, linear.weight)]
    both.zero_grad()
    linear(table(torch.tensor([2]))).sum().backward()
    both.step()
    after = (table.weight, linear.weight)
    assert all(not torch.equal(b, p) for b, p in zip(before, after, strict=True))
    again = Optimizers(LazyAdam(table.parameters()), torch.optim.Adam(linear.parameters()))
    again.load_state_dict(both.state_dict())
    assert again.optimizers[1].state_dict()["state"].keys() == {0, 1}
    with pytest.raises(KgrecError, match="another kind of step"):
        again.load_state_dict(torch.optim.Adam(linear.parameters()).state_dict())

"""Adam for embedding tables with sparse gradients, at a cost that follows the rows a step reads.

Sampled steps (:mod:`kgrec.train.gnn`) read a few thousand rows of tables with hundreds of
thousands of rows. ``torch.optim.SparseAdam`` computes the right update, but reads its moments
through ``Tensor.sparse_mask``, which passes over the whole table at every step (153 ms for a
``[300000, 256]`` table on one core here, against 2 ms for the rows themselves), so a step
would cost what the catalogue costs after all. :class:`LazyAdam` is the same update (lazy Adam:
a row's moments move only when the row has a gradient) done with row gathers and
``index_add_``. :class:`Optimizers` steps it and a dense Adam as one optimiser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from kgrec.errors import KgrecError


class LazyAdam(torch.optim.Optimizer):
    r"""``torch.optim.SparseAdam``'s update, reading and writing only the rows ``R`` of the
    sparse gradient ``g [R, d]`` of each parameter ``[N, d]``:

    ``m_R <- b1 m_R + (1 - b1) g``, ``v_R <- b2 v_R + (1 - b2) g^2``,
    ``w_R <- w_R - lr sqrt(1 - b2^t) / (1 - b1^t) * m_R / (sqrt(v_R) + eps)``,

    with ``t`` the parameter's step count. Parameters must get sparse gradients
    (``nn.Embedding(sparse=True)``); rows without a gradient keep their moments.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError(
                        "LazyAdam takes sparse gradients only (Embedding sparse=True)"
                    )
                grad = param.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros(())
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                step = float(state["step"])
                exp_avg = state["exp_avg"].index_select(0, rows).mul_(beta1)
                exp_avg.add_(values, alpha=1 - beta1)
                exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2)
                exp_avg_sq.addcmul_(values, values, value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, exp_avg)
                state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
                step_size = lr * (1 - beta2**step) ** 0.5 / (1 - beta1**step)
                update = exp_avg.div_(exp_avg_sq.sqrt_().add_(eps)).mul_(-step_size)
                param.index_add_(0, rows, update)
        return loss


class Optimizers:
    """Several optimisers stepped as one (``zero_grad``, ``step``, ``state_dict``), e.g. a
    :class:`LazyAdam` over embedding tables and an Adam over the rest."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state.get("optimizers")
        if not isinstance(saved, list) or len(saved) != len(self.optimizers):
            raise KgrecError(
                "the saved optimiser state is of another kind of step (train.item_sampling)"
            )
        for optimizer, one in zip(self.optimizers, saved, strict=True):
            optimizer.load_state_dict(one)

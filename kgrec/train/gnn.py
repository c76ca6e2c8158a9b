"""One optimisation run of the GNN: next-item softmax on temporal cuts, distillation, views.

:class:`GNNTrainer` trains a :class:`~kgrec.nn.model.KGRec` on one history. Each step draws one
random temporal cut per user (a prefix of their history as input, the next item as target) and
minimises a softmax cross-entropy over the whole catalogue, plus ``kd_weight`` times the
listwise KL to the teacher's scores of the same prefix (Ranking Distillation KDD'18, DE-RRD
CIKM'20), plus optionally ``cl_weight`` times an XSimGCL contrastive loss between two
noise-perturbed views of the users. :func:`build_model` builds the configured model.
Under ``torchrun`` the step is data parallel (:mod:`kgrec.train.distributed`).

Catalogues too large for a full step (``train.item_sampling``, :func:`use_sampling`) train on
a sampled softmax: a step embeds only its candidates ``C`` = the items of its prefixes and
targets plus ``num_negatives`` uniform negatives shared by the batch, each from its one-hop
knowledge-graph subgraph (:meth:`~kgrec.nn.model.KGRec.kg_messages_of`), and its logits,
targets and teacher scores are ``[B, |C|]`` instead of ``[B, num_items]``. The batch's
histories and targets act as in-batch negatives for the other users (drawn in proportion to
popularity) and the uniform ones cover the tail: mixed negative sampling (Yang et al., WWW'20
companion; Covington et al., RecSys'16), without a logQ correction. The id and entity tables
then get sparse gradients and lazy Adam updates (:func:`make_optimizer`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.config import Config, TrainConfig
from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import Cut, History, Prefix
from kgrec.errors import KgrecError
from kgrec.nn.ensemble import Ensemble
from kgrec.nn.loss import info_nce, listwise_kd_loss, perturb, softmax_loss
from kgrec.nn.model import ITEM, USER, EdgeType, ItemEntityGraph, KGRec, prune_edge_types
from kgrec.nn.scoring import ScoreFn
from kgrec.train import distributed
from kgrec.train.optim import LazyAdam, Optimizers
from kgrec.train.teacher import Side


def model_edges(artifact: GraphArtifact, min_relation_edges: int) -> dict[EdgeType, Tensor]:
    """The knowledge-graph edge types the model may use (rare relations pruned)."""
    edges = prune_edge_types(artifact.kg_edge_index, min_relation_edges)
    return {e: v for e, v in edges.items() if USER not in (e[0], e[2])}


def build_model(
    artifact: GraphArtifact, x_dict: Mapping[str, Tensor] | None, config: Config
) -> KGRec:
    """The configured :class:`KGRec` for ``artifact``, its knowledge graph set."""
    cfg = config.model
    edges = model_edges(artifact, cfg.min_relation_edges) if cfg.use_kg else {}
    text = dict(x_dict or {}) if cfg.use_text else {}
    graph = ItemEntityGraph.build(
        edges, list(edges), artifact.num_nodes[ITEM], cfg.min_entity_degree
    )
    model = KGRec(
        num_nodes=artifact.num_nodes,
        edge_types=list(edges),
        embedding_dim=cfg.embedding_dim,
        text_dim=next(iter(text.values())).size(1) if text else None,
        text_node_types=sorted(text) if text else None,
        use_kg=cfg.use_kg,
        decay=cfg.decay,
        temperature=cfg.temperature,
        num_entities=graph.num_entities,
    )
    model.set_graph(graph)
    return model


class GNNTrainer:
    """One optimisation run of a :class:`KGRec` on one history (see the module docstring).

    Args:
        model: The model (moved to ``device``).
        history: The interactions it learns from.
        teacher: Distillation teacher (``None``: no distillation).
        x_dict: Text features ``{node_type: [num_nodes, text_dim]}`` (may be empty).
        config: ``batch_size`` users per step, ``cuts_per_epoch`` passes over the users per
            epoch, losses and optimiser settings.
        device: Where the model runs (batches are cut on the CPU).

    Under ``torchrun`` every rank cuts the same batches and learns from its share of their
    rows (:func:`kgrec.train.distributed.shard`) through :class:`DistributedDataParallel`;
    :attr:`model` stays the plain model (its ``state_dict`` is the same as in one process).
    """

    def __init__(
        self,
        model: KGRec,
        history: History,
        teacher: Ensemble | None,
        x_dict: Mapping[str, Tensor] | None,
        config: TrainConfig,
        device: torch.device,
    ) -> None:
        self.model = model.to(device)
        self.history = history
        self.teacher = teacher
        self.x_dict = {t: v.to(device) for t, v in (x_dict or {}).items()}
        self.config = config
        self.device = device
        self.generator = torch.Generator().manual_seed(config.seed)
        self.sampled = use_sampling(config, model, x_dict, device)
        self.optimizer = make_optimizer(model, config, device, self.sampled)
        graph = model._graph  # without KG messages, entity and relation vectors get no gradient
        uses_kg = model.use_kg and graph is not None and graph.item.numel() > 0
        # a sampled step's items may reach no entity at all: then some parameters get no gradient
        self.objective = distributed.wrap(
            _Objective(self.model), device, find_unused=not uses_kg or self.sampled
        )
        self.users = (history.degree() >= 2).nonzero().squeeze(1)
        if self.users.numel() == 0:
            raise KgrecError("no user has two training interactions: nothing to learn from")

    def train_epoch(self, epoch: int = 0) -> dict[str, float]:
        """``cuts_per_epoch`` passes over the users in batches; mean loss terms."""
        self.objective.train()
        sums: dict[str, float] = {}
        steps = 0
        cfg = self.config
        for _ in range(cfg.cuts_per_epoch):
            order = self.users[torch.randperm(self.users.numel(), generator=self.generator)]
            for start in range(0, order.numel(), cfg.batch_size):
                terms = self.step(order[start : start + cfg.batch_size])
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value
                steps += 1
        return {name: value / max(steps, 1) for name, value in sums.items()}

    def step(self, users: Tensor) -> dict[str, float]:
        """One optimisation step on one temporal cut per user; the loss terms (of this rank's
        share of the rows under torchrun). A sampled step scores the batch's candidates ``C``
        only: rows, targets, logits and teacher scores are ``[B, |C|]``."""
        cfg = self.config
        cut = self.history.cut(users, self.generator, cfg.num_targets)
        rank, world_size = distributed.rank(), distributed.world_size()
        items: Tensor | None = None
        local: Cut | None = None
        if self.sampled:  # candidates of the whole batch: every rank scores the same items
            negatives = torch.randint(
                self.model.num_items, (cfg.num_negatives,), generator=self.generator
            )
            items, local = candidates(cut, negatives)
            local, _ = distributed.shard(local, rank, world_size)
        cut, weight = distributed.shard(cut, rank, world_size)
        prefix = cut.prefix
        local = cut if local is None else local
        width = self.model.num_items if items is None else items.numel()
        rows = local.prefix.dense(width, self.model.decay).to(self.device)
        target = local.targets(width).to(self.device)
        logits, *views = self.objective(
            rows,
            self.x_dict,
            cfg.cl_eps if cfg.cl_weight > 0 else None,
            None if items is None else items.to(self.device),
        )
        terms = {"rank": softmax_loss(logits, target)}
        if self.teacher is not None and cfg.kd_weight > 0:
            teacher = self.teacher.score(prefix)
            if items is not None:
                teacher = teacher[:, items]
            teacher = teacher.to(self.device)
            unseen = torch.ones_like(teacher, dtype=torch.bool)
            seen = local.prefix
            unseen[seen.row.to(self.device), seen.item.to(self.device)] = False
            terms["kd"] = cfg.kd_weight * listwise_kd_loss(
                logits, teacher, cfg.kd_temperature, mask=unseen
            )
        if views:
            terms["cl"] = cfg.cl_weight * info_nce(views[0], views[1], cfg.cl_temperature)
        loss = torch.stack(list(terms.values())).sum()
        self.optimizer.zero_grad(set_to_none=True)
        (loss * weight).backward()
        self.optimizer.step()
        out = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        if items is not None:
            out["candidates"] = float(width)  # |C|: how much of the catalogue a step scored
        return out

    @torch.no_grad()
    def score_fn(self, history: History | None = None) -> ScoreFn:
        """``users -> logits [B, I]`` of the current model over ``history`` (default: own)."""
        self.model.eval()
        history = history or self.history
        items_in, items_out = self.model.serving_embeddings(self.x_dict)
        decay = self.model.decay

        def score(users: Tensor) -> Tensor:
            rows = history.rows(users.cpu(), decay).to(items_in.device)
            return (F.normalize(rows @ items_in, dim=-1) @ items_out.t()).cpu()

        return score


class _Objective(nn.Module):
    """The differentiable part of a step as one module (what DDP wraps): logits ``[B, I]``
    of the history rows ``[B, I]``, then two perturbed user views ``[B, d]`` when ``cl_eps``
    is given. With ``items [C]`` (a sampled step) rows and logits are ``[B, C]`` over those
    items only."""

    def __init__(self, model: KGRec) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        rows: Tensor,
        x_dict: Mapping[str, Tensor],
        cl_eps: float | None = None,
        items: Tensor | None = None,
    ) -> tuple[Tensor, ...]:
        model = self.model
        items_in, items_out = model.item_embeddings(x_dict, items)
        user = model.user_embedding(rows, items_in)
        logits = user @ F.normalize(items_out, dim=-1).t() / model.temperature
        if cl_eps is None:
            return (logits,)
        view_a = model.user_embedding(rows, perturb(items_in, cl_eps))
        view_b = model.user_embedding(rows, perturb(items_in, cl_eps))
        return logits, view_a, view_b


def make_optimizer(
    model: KGRec, config: TrainConfig, device: torch.device, sampled: bool
) -> torch.optim.Optimizer | Optimizers:
    """Adam over every parameter; for sampled steps :class:`~kgrec.train.optim.LazyAdam` (a
    row's moments move only when the row is in a step) over the id and entity tables, switched
    to sparse gradients (:meth:`KGRec.sparse_gradients`), and Adam over the rest, so a step's
    update costs its rows, not the catalogue.

    Under ``torchrun`` sampled steps keep dense gradients and Adam: NCCL all-reduces no
    sparse tensors, and gloo's sparse all-reduce (an all-gather of each rank's rows) crashed a
    rank with SIGSEGV in this project's CI and fails when one rank's rows are empty
    (pytorch/pytorch#87497), so several processes never exchange sparse gradients."""
    fused = device.type in ("cpu", "cuda")  # one kernel per step, not one per tensor
    if not sampled or distributed.world_size() > 1:
        return torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused
        )
    if config.weight_decay > 0:
        raise KgrecError(
            "train.weight_decay needs full steps (train.item_sampling: full): sampled steps "
            "update the embedding tables lazily (LazyAdam has no weight decay)"
        )
    model.sparse_gradients(True)
    tables = [model.item_input.weight, model.item_output.weight, model.entity_emb.weight]
    rest = [p for p in model.parameters() if all(p is not t for t in tables)]
    return Optimizers(
        LazyAdam(tables, lr=config.lr),
        torch.optim.Adam(rest, lr=config.lr, fused=fused),
    )


def candidates(cut: Cut, negatives: Tensor) -> tuple[Tensor, Cut]:
    """A sampled step's candidates: the sorted distinct items ``C [S]`` of the cut's prefixes,
    its targets and ``negatives``, and the cut with every item renumbered to its position in
    ``C`` (so ``cut.prefix.dense(S)`` is the ``[B, S]`` history over the candidates)."""
    prefix = cut.prefix
    items = torch.unique(torch.cat([prefix.item, cut.target_item, negatives]))
    local = Cut(
        users=cut.users,
        prefix=Prefix(
            prefix.row, torch.searchsorted(items, prefix.item), prefix.age, prefix.num_rows
        ),
        target_row=cut.target_row,
        target_item=torch.searchsorted(items, cut.target_item),
    )
    return items, local


def full_step_bytes(
    batch_size: int, num_items: int, dim: int, text_dim: int, num_kg_edges: int
) -> int:
    """Rough peak memory of a full-catalogue step beyond the parameters: about eight float32
    ``[B, I]`` tensors (logits, log-softmax, targets, history rows, teacher scores, its
    softmax, the mask and gradients) and the activations of every item (text MLP ``[I, text_dim
    + 2d]``, two ``[I, d]`` item tables, KG messages ``[E, d]``), each with its gradient."""
    per_step = 8 * batch_size * num_items
    activations = 2 * (num_items * (text_dim + 4 * dim) + num_kg_edges * dim)
    return 4 * (per_step + activations)


CGROUP = Path("/sys/fs/cgroup")
"""Where a cgroup v2 memory limit of this process would be (``memory.max``, ``memory.current``)."""


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device``: the GPU's free memory, or the host's available RAM (Linux's
    ``MemAvailable``: free pages plus the page cache it can reclaim), capped by the room left
    under a cgroup v2 memory limit (a container's ``memory.max``)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    free = _meminfo_available()
    try:
        limit = (CGROUP / "memory.max").read_text(encoding="ascii").strip()
        if limit != "max":
            used = int((CGROUP / "memory.current").read_text(encoding="ascii"))
            free = min(free, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return free


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # neither Linux nor POSIX: assume it fits
        return 1 << 62


def use_sampling(
    config: TrainConfig, model: KGRec, x_dict: Mapping[str, Tensor] | None, device: torch.device
) -> bool:
    """Whether steps use the sampled softmax: ``item_sampling`` ``sampled`` or ``full``, or on
    ``auto`` when :func:`full_step_bytes` exceeds half of :func:`available_bytes` (the other
    half is for the parameters, Adam's moments and validation)."""
    if config.item_sampling != "auto":
        return config.item_sampling == "sampled"
    text = (x_dict or {}).get(ITEM)
    graph = model._graph
    need = full_step_bytes(
        config.batch_size,
        model.num_items,
        model.embedding_dim,
        int(text.size(1)) if text is not None and model.text_mlp is not None else 0,
        int(graph.item.numel()) if graph is not None and model.use_kg else 0,
    )
    return need > available_bytes(device) // 2


def teacher_side(
    artifact: GraphArtifact, x_dict: Mapping[str, Tensor] | None, config: Config
) -> Side:
    """Item-entity edges (the model's relations) and item text for the teacher."""
    edges = model_edges(artifact, config.model.min_relation_edges)
    graph = ItemEntityGraph.build(
        edges, list(edges), artifact.num_nodes[ITEM], config.model.min_entity_degree
    )
    text = (x_dict or {}).get(ITEM)
    return Side(
        item_entity=torch.stack([graph.item, graph.entity]) if graph.item.numel() else None,
        num_entities=graph.num_entities,
        item_text=text.float() if text is not None else None,
    )

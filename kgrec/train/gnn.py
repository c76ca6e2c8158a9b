"""One optimisation run of the GNN: next-item softmax on temporal cuts, distillation, views.

:class:`GNNTrainer` trains a :class:`~kgrec.nn.model.KGRec` on one history. Each step draws one
random temporal cut per user (a prefix of their history as input, the next item as target) and
minimises a softmax cross-entropy over the whole catalogue, plus ``kd_weight`` times the
listwise KL to the teacher's scores of the same prefix (Ranking Distillation KDD'18, DE-RRD
CIKM'20), plus optionally ``cl_weight`` times an XSimGCL contrastive loss between two
noise-perturbed views of the users. :func:`build_model` builds the configured model.
Under ``torchrun`` the step is data parallel (:mod:`kgrec.train.distributed`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.config import Config, TrainConfig
from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History
from kgrec.errors import KgrecError
from kgrec.nn.ensemble import Ensemble
from kgrec.nn.loss import info_nce, listwise_kd_loss, perturb, softmax_loss
from kgrec.nn.model import ITEM, USER, EdgeType, ItemEntityGraph, KGRec, prune_edge_types
from kgrec.nn.scoring import ScoreFn
from kgrec.train import distributed
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
        self.optimizer = torch.optim.Adam(
            model.parameters(),
            lr=config.lr,
            weight_decay=config.weight_decay,
            fused=device.type in ("cpu", "cuda"),  # one kernel per step, not one per tensor
        )
        graph = model._graph  # without KG messages, entity and relation vectors get no gradient
        uses_kg = model.use_kg and graph is not None and graph.item.numel() > 0
        self.objective = distributed.wrap(_Objective(self.model), device, find_unused=not uses_kg)
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
        share of the rows under torchrun)."""
        cfg = self.config
        cut = self.history.cut(users, self.generator, cfg.num_targets)
        cut, weight = distributed.shard(cut, distributed.rank(), distributed.world_size())
        prefix = cut.prefix
        rows = prefix.dense(self.model.num_items, self.model.decay).to(self.device)
        target = cut.targets(self.model.num_items).to(self.device)
        logits, *views = self.objective(
            rows, self.x_dict, cfg.cl_eps if cfg.cl_weight > 0 else None
        )
        terms = {"rank": softmax_loss(logits, target)}
        if self.teacher is not None and cfg.kd_weight > 0:
            teacher = self.teacher.score(prefix).to(self.device)
            unseen = torch.ones_like(teacher, dtype=torch.bool)
            unseen[prefix.row.to(self.device), prefix.item.to(self.device)] = False
            terms["kd"] = cfg.kd_weight * listwise_kd_loss(
                logits, teacher, cfg.kd_temperature, mask=unseen
            )
        if views:
            terms["cl"] = cfg.cl_weight * info_nce(views[0], views[1], cfg.cl_temperature)
        loss = torch.stack(list(terms.values())).sum()
        self.optimizer.zero_grad(set_to_none=True)
        (loss * weight).backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

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
    is given."""

    def __init__(self, model: KGRec) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, rows: Tensor, x_dict: Mapping[str, Tensor], cl_eps: float | None = None
    ) -> tuple[Tensor, ...]:
        model = self.model
        items_in, items_out = model.item_embeddings(x_dict)
        user = model.user_embedding(rows, items_in)
        logits = user @ F.normalize(items_out, dim=-1).t() / model.temperature
        if cl_eps is None:
            return (logits,)
        view_a = model.user_embedding(rows, perturb(items_in, cl_eps))
        view_b = model.user_embedding(rows, perturb(items_in, cl_eps))
        return logits, view_a, view_b


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

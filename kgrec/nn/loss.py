"""Training losses: softmax ranking loss, listwise distillation, contrastive views.

References:
    - Softmax over the catalogue (the sampled-softmax / InfoNCE family): Covington et al.,
      "Deep Neural Networks for YouTube Recommendations", RecSys'16; SimpleX (CIKM'21).
    - Perturbed-embedding contrastive views: Yu et al., "XSimGCL: Towards Extremely Simple
      Graph Contrastive Learning for Recommendation", TKDE'23.
    - Ranking distillation: Tang & Wang, "Ranking Distillation", KDD'18; Kang et al., "DE-RRD:
      A Knowledge Distillation Framework for Recommender System", CIKM'20.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def softmax_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of a softmax over all items, averaged over each row's targets (a scalar).

    ``mean_b [ -sum_i y_bi log softmax(logits_b)_i / sum_i y_bi ]`` over rows with a target.

    Args:
        logits: ``[B, num_items]`` scores.
        target: ``[B, num_items]`` non-negative target weights (e.g. 1 for the next item).
    """
    total = target.sum(-1)
    keep = total > 0
    log_p = F.log_softmax(logits.float(), dim=-1)
    rows = -(log_p * target).sum(-1)[keep] / total[keep]
    return rows.mean() if rows.numel() else logits.sum() * 0.0


def info_nce(view_a: Tensor, view_b: Tensor, temperature: float = 0.2) -> Tensor:
    """Symmetric InfoNCE between two views ``[B, d]`` of the same rows (a scalar).

    Row ``b`` of ``view_a`` must pick row ``b`` of ``view_b`` among all rows (cosine /
    temperature), and vice versa; the other rows of the batch are the negatives.
    """
    a, b = F.normalize(view_a.float(), dim=-1), F.normalize(view_b.float(), dim=-1)
    logits = a @ b.t() / temperature
    labels = torch.arange(a.size(0), device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


def perturb(embedding: Tensor, eps: float) -> Tensor:
    """XSimGCL's view: ``e + eps * sign(e) * normalize(|u|)``, ``u ~ U(0, 1)`` (same shape)."""
    noise = F.normalize(torch.rand_like(embedding), dim=-1)
    return embedding + eps * torch.sign(embedding) * noise


def listwise_kd_loss(
    student_scores: Tensor,
    teacher_scores: Tensor,
    temperature: float = 1.0,
    mask: Tensor | None = None,
    weight: Tensor | None = None,
) -> Tensor:
    r"""Listwise distillation ``T^2 * KL(softmax(t / T) || softmax(s / T))`` over candidates.

    Averaged over the ``B`` rows (Ranking Distillation KDD'18, DE-RRD CIKM'20). It is ``0``
    exactly when the two score lists agree up to a per-row constant.

    Args:
        student_scores: Student logits ``[B, C]`` (``C`` candidate items per user).
        teacher_scores: Teacher logits ``[B, C]`` (no gradient flows into them).
        temperature: Softmax temperature ``T > 0``; higher is softer.
        mask: Optional ``[B, C]`` boolean, ``False`` for padding candidates.
        weight: Optional ``[B]`` per-row weights (e.g. more for users with few interactions);
            the loss is then ``mean(weight * KL_row)``.
    """
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    student = student_scores.float() / temperature
    teacher = teacher_scores.detach().float() / temperature
    if mask is not None:
        student = student.masked_fill(~mask, float("-inf"))
        teacher = teacher.masked_fill(~mask, float("-inf"))
    log_p_student = F.log_softmax(student, dim=-1)
    log_p_teacher = F.log_softmax(teacher, dim=-1)
    p_teacher = log_p_teacher.exp()
    kl = p_teacher * (log_p_teacher - log_p_student)
    if mask is not None:
        kl = kl.masked_fill(~mask, 0.0)
    rows = kl.sum(-1)
    if weight is not None:
        rows = rows * weight.to(rows.dtype)
    return rows.mean() * temperature**2

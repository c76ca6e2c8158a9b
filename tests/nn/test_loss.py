"""Losses: softmax, listwise distillation, contrastive views, BPR, L2, TransE."""

from __future__ import annotations

import pytest
import torch

from kgrec.nn.loss import (
    info_nce,
    listwise_kd_loss,
    perturb,
    softmax_loss,
)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
def test_kd_zero_iff_equal(temperature: float) -> None:
    scores = torch.randn(6, 10)
    assert listwise_kd_loss(scores, scores, temperature).item() == pytest.approx(0.0, abs=1e-6)
    # shift-invariant per row (softmax)
    shifted = scores + torch.randn(6, 1)
    assert listwise_kd_loss(shifted, scores, temperature).item() == pytest.approx(0.0, abs=1e-5)
    student = torch.randn(6, 10, requires_grad=True)
    loss = listwise_kd_loss(student, scores, temperature)
    assert loss.dim() == 0 and loss.item() > 0
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_kd_mask_ignores_padding() -> None:
    teacher, student = torch.randn(3, 5), torch.randn(3, 5)
    mask = torch.tensor([[True] * 3 + [False] * 2] * 3)
    masked = listwise_kd_loss(student, teacher, 2.0, mask)
    assert masked.item() == pytest.approx(
        listwise_kd_loss(student[:, :3], teacher[:, :3], 2.0).item()
    )


def test_kd_no_gradient_into_teacher() -> None:
    teacher = torch.randn(2, 4, requires_grad=True)
    listwise_kd_loss(torch.randn(2, 4, requires_grad=True), teacher).backward()
    assert teacher.grad is None


def test_softmax_loss_is_the_cross_entropy_of_the_targets() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    expected = (
        -torch.log_softmax(logits[0], 0)[0] - torch.log_softmax(logits[1], 0)[1:].mean()
    ) / 2
    assert torch.allclose(softmax_loss(logits, target), expected)
    # rows without a target are ignored
    assert torch.allclose(
        softmax_loss(logits, target * torch.tensor([[1.0], [0.0]])),
        -torch.log_softmax(logits[0], 0)[0],
    )


def test_info_nce_prefers_aligned_views() -> None:
    torch.manual_seed(0)
    a = torch.randn(8, 4)
    aligned = info_nce(a, a + 0.01 * torch.randn(8, 4))
    shuffled = info_nce(a, a[torch.randperm(8)])
    assert aligned < shuffled
    assert aligned.dim() == 0 and aligned > 0


def test_perturb_keeps_signs_and_bounds_the_noise() -> None:
    e = torch.randn(16, 8)
    p = perturb(e, eps=0.1)
    assert torch.all(torch.sign(p) == torch.sign(e))
    assert torch.allclose((p - e).norm(dim=-1), torch.full((16,), 0.1), atol=1e-5)

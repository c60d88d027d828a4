"""Alignment losses and metrics between student and teacher token features.

All functions take token features ``(B, N, C)`` (N tokens of one image grid, flattened
row-major) and return scalar tensors averaged over the batch. Student and teacher token counts
must match; channel counts must match only where features are compared directly (cosine).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cosine_loss", "mean_cosine", "pairwise_cosine", "locality_target", "locality_loss",
           "pairwise_correlation"]


def _check_tokens(student: torch.Tensor, teacher: torch.Tensor, same_channels: bool) -> None:
    if student.ndim != 3 or teacher.ndim != 3:
        raise ValueError(f"expected (B, N, C) token features, got student {tuple(student.shape)} "
                         f"and teacher {tuple(teacher.shape)}")
    if student.shape[:2] != teacher.shape[:2]:
        raise ValueError(f"student {tuple(student.shape[:2])} and teacher "
                         f"{tuple(teacher.shape[:2])} differ in batch or token count: resample "
                         "the teacher to the student grid")
    if same_channels and student.shape[2] != teacher.shape[2]:
        raise ValueError(f"student has {student.shape[2]} channels and teacher {teacher.shape[2]}: "
                         "add a projection (teacher option project=True) before the cosine loss")


def mean_cosine(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over batch and tokens of cos(S_i, T_i). student, teacher: (B, N, C) -> scalar."""
    _check_tokens(student, teacher, same_channels=True)
    return F.cosine_similarity(student.float(), teacher.float(), dim=-1, eps=1e-6).mean()


def cosine_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L_core = 1 - mean_i cos(S_i, T_i) (paper section 5, written as a loss to minimise)."""
    return 1.0 - mean_cosine(student, teacher)


def pairwise_cosine(tokens: torch.Tensor) -> torch.Tensor:
    """(B, N, C) -> (B, N, N) matrix of cos(x_i, x_j), computed in float32."""
    x = F.normalize(tokens.float(), dim=-1, eps=1e-6)
    return x @ x.transpose(1, 2)


def locality_target(teacher: torch.Tensor, temperature: float | None = 20.0) -> torch.Tensor:
    """The teacher's pairwise target f(cos(T_i, T_j)) with f(x) = exp(t (x - 1)).

    ``temperature=None`` keeps the plain cosine (f = identity), used for direct distillation
    from a spatial teacher. teacher: (B, N, C) -> (B, N, N).
    """
    sim = pairwise_cosine(teacher)
    return sim if temperature is None else torch.exp(temperature * (sim - 1.0))


def locality_loss(student: torch.Tensor, teacher: torch.Tensor,
                  temperature: float | None = 20.0) -> torch.Tensor:
    """L_loc = mean_{i,j} (cos(S_i, S_j) - f(cos(T_i, T_j)))^2 over all N^2 token pairs.

    student: (B, N, C_s); teacher: (B, N, C_t) with any C_t (e.g. SAM 2 mask logits). Scalar.
    """
    _check_tokens(student, teacher, same_channels=False)
    target = locality_target(teacher, temperature)
    return (pairwise_cosine(student) - target).pow(2).mean()


@torch.no_grad()
def pairwise_correlation(student: torch.Tensor, teacher: torch.Tensor,
                         temperature: float | None = None) -> torch.Tensor:
    """Pearson correlation between the student's pairwise cosine matrix and the teacher's
    (transformed by f when ``temperature`` is given), over off-diagonal pairs, per image.

    student: (B, N, C_s); teacher: (B, N, C_t). Returns (B,) correlations in [-1, 1].
    """
    _check_tokens(student, teacher, same_channels=False)
    n = student.shape[1]
    if n < 3:
        raise ValueError(f"pairwise correlation needs at least 3 tokens, got {n}")
    off = ~torch.eye(n, dtype=torch.bool, device=student.device)
    s = pairwise_cosine(student)[:, off]
    t = locality_target(teacher, temperature)[:, off]
    s = s - s.mean(dim=1, keepdim=True)
    t = t - t.mean(dim=1, keepdim=True)
    denom = (s.norm(dim=1) * t.norm(dim=1)).clamp_min(1e-12)
    return (s * t).sum(dim=1) / denom

"""Losses: SMP-compatible multiclass Dice, cross-entropy, their sum, and class weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lale.training.losses import (
    LOSS_NAMES,
    CrossEntropyLoss,
    DiceLoss,
    build_loss,
    class_weights_from_counts,
)

C = 5
IGNORE = 255


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, C, 12, 10, generator=g)
    target = torch.randint(0, C - 1, (2, 12, 10), generator=g)  # class C-1 absent
    target[:, :3] = IGNORE
    return logits, target


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_ignore_pixels_change_nothing(name: str) -> None:
    logits, target = _batch()
    loss_fn = build_loss(name, class_weights=[1.0, 2.0, 0.5, 1.0, 1.5])
    a = logits.clone().requires_grad_(True)
    loss_a = loss_fn(a, target)
    loss_a.backward()
    changed = logits.clone()
    changed[:, :, :3] = 50 * torch.randn_like(changed[:, :, :3])
    loss_b = loss_fn(changed, target)
    assert torch.equal(loss_a.detach(), loss_b)
    assert a.grad is not None and torch.isfinite(a.grad).all()
    assert torch.all(a.grad[:, :, :3] == 0)  # no gradient through ignore pixels
    assert a.grad[:, :, 3:].abs().sum() > 0


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_perfect_prediction(name: str) -> None:
    _, target = _batch()
    logits = 40 * F.one_hot(target.clamp_max(C - 1), C).permute(0, 3, 1, 2).float()
    loss = build_loss(name)(logits, target)
    assert 0 <= float(loss) < 1e-5


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_all_ignore_batch_is_zero_with_finite_gradient(name: str) -> None:
    logits = torch.randn(1, C, 4, 4, requires_grad=True)
    loss = build_loss(name, class_weights=[1.0] * C)(logits, torch.full((1, 4, 4), IGNORE))
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_dice_matches_hand_computation() -> None:
    logits, target = _batch(1)
    probs = logits.softmax(1)
    valid = target != IGNORE
    losses = []
    for c in range(C):
        t = ((target == c) & valid).float()
        p = probs[:, c] * valid
        dice = 2 * (p * t).sum() / (p.sum() + t.sum())
        losses.append((1 - dice) if t.sum() > 0 else torch.tensor(0.0))  # absent class adds 0
    expected = torch.stack(losses).mean()  # mean over all classes
    assert float(DiceLoss()(logits, target)) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 0.5, 1.0, 3.0]])
def test_dice_matches_smp(weights: list[float] | None) -> None:
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    logits, target = _batch(2)
    kwargs = {} if weights is None else {"class_weights": weights}
    ref = smp_losses.DiceLoss(mode="multiclass", ignore_index=IGNORE, **kwargs)
    ours = DiceLoss(ignore_index=IGNORE, class_weights=weights)
    assert float(ours(logits, target)) == pytest.approx(float(ref(logits, target)), rel=1e-5)


def test_cross_entropy_matches_torch_with_weights() -> None:
    logits, target = _batch(3)
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])
    ref = F.cross_entropy(logits, target, weight=w, ignore_index=IGNORE)
    got = CrossEntropyLoss(class_weights=w)(logits, target)
    assert float(got) == pytest.approx(float(ref), rel=1e-6)
    ref = F.cross_entropy(logits, target, ignore_index=IGNORE)
    assert float(build_loss("ce")(logits, target)) == pytest.approx(float(ref), rel=1e-6)


def test_dice_ce_is_the_sum() -> None:
    logits, target = _batch(4)
    total = build_loss("dice+ce")(logits, target)
    parts = build_loss("dice")(logits, target) + build_loss("ce")(logits, target)
    assert float(total) == pytest.approx(float(parts), rel=1e-6)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_weights_are_not_saved_and_any_precision_works(name: str) -> None:
    loss_fn = build_loss(name, class_weights=[1.0, 2.0, 0.5, 1.0, 3.0])
    assert loss_fn.state_dict() == {}  # recomputed from the config, never a checkpoint key
    logits, target = _batch(5)
    ref = loss_fn(logits, target)
    assert loss_fn(logits.double(), target).dtype == torch.float64
    assert loss_fn.double()(logits, target).dtype == torch.float32
    half = loss_fn(logits.bfloat16(), target)  # upcast to fp32 inside
    assert half.dtype == torch.float32
    assert float(half) == pytest.approx(float(ref), rel=2e-2)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([[1.0, 2.0]], "1-D"),
        ([], "1-D"),
        ([1.0, -1.0], "non-negative"),
        ([0.0, 0.0], "not all zero"),
        ([1.0, float("nan")], "finite"),
    ],
)
def test_bad_weights(weights: list[float], message: str) -> None:
    for name in LOSS_NAMES:
        with pytest.raises(ValueError, match=message):
            build_loss(name, class_weights=weights)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_weight_count_must_match_classes(name: str) -> None:
    logits, target = _batch()
    with pytest.raises(ValueError, match="3 class weights for 5 classes"):
        build_loss(name, class_weights=[1.0, 1.0, 1.0])(logits, target)


def test_shape_mismatch_and_unknown_name() -> None:
    logits, target = _batch()
    with pytest.raises(ValueError, match="expected logits"):
        build_loss("dice")(logits, target[:, :5])
    with pytest.raises(ValueError, match="dice, ce, dice\\+ce"):
        build_loss("focal")  # type: ignore[arg-type]


def test_class_weights_from_counts() -> None:
    counts = [1000, 10, 400, 0, 90]
    for scheme in ("inverse_sqrt", "inverse", "median_freq"):
        w = class_weights_from_counts(counts, scheme=scheme)  # type: ignore[arg-type]
        assert len(w) == 5 and w[3] == 0.0
        present = [x for x, n in zip(w, counts, strict=True) if n]
        assert sum(present) / len(present) == pytest.approx(1.0)
        assert w[1] > w[4] > w[2] > w[0]  # rarer classes weigh more
    inverse = class_weights_from_counts(counts, scheme="inverse")
    totals = [x * n for x, n in zip(inverse, counts, strict=True) if n]
    assert max(totals) == pytest.approx(min(totals))  # every class the same total weight
    sqrt = class_weights_from_counts(torch.tensor(counts))
    assert sqrt[1] / sqrt[0] == pytest.approx(10.0)
    median = class_weights_from_counts(counts, scheme="median_freq")
    assert median[4] / median[2] == pytest.approx(400 / 90)


@pytest.mark.parametrize(
    ("counts", "scheme", "message"),
    [
        ([0, 0], "inverse", "one positive"),
        ([1, -2], "inverse", "non-negative"),
        ([[1, 2]], "inverse", "1-D"),
        ([1, 2], "log", "unknown weighting scheme"),
    ],
)
def test_class_weights_errors(counts: list[int], scheme: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        class_weights_from_counts(counts, scheme=scheme)  # type: ignore[arg-type]

"""Synthetic separability: per-pixel colour classifiers against a briefly trained ``lale_t``.

The synthetic ARAS400k-like scenes (:mod:`lale.data.synthetic`) are meant to need texture and
spatial context, not a colour lookup. This benchmark shows it: classifiers that see one pixel's
RGB only — nearest class mean, a colour look-up table, multinomial logistic regression and a small
MLP — are scored against ``lale_t`` trained from scratch for a few minutes, all on the same test
split with the same metric.

Usage (from the repository root; ~10 minutes on 2 idle CPU cores with the defaults)::

    .venv/bin/python benchmarks/synthetic_separability.py              # 400/100 patches, 1000 steps
    .venv/bin/python benchmarks/synthetic_separability.py --steps 0 --minutes 8   # by the clock
    .venv/bin/python benchmarks/synthetic_separability.py --train 100 --test 20 --steps 300

``lale_t`` trains for ``--steps`` steps or ``--minutes`` minutes, whichever ends first (the
step limit makes runs comparable across machines; the clock limit bounds the run time on a busy
one, where fewer steps also mean a weaker model — the report says which limit stopped it).
On a machine other jobs share, ``--threads 1`` is much faster than two threads on two busy
cores (0.35 s against 1.5–35 s per training step here); the recorded results used it.

Patches are generated in memory (``patch_rng(seed, split, index)``, so the same seed gives the
same data). Writes ``benchmarks/results/synthetic_separability.{md,json}`` (scores with their
context) and ``synthetic_samples.png`` (test samples: image | mask | lale_t | best colour
classifier). Scores come from one confusion matrix over the whole test split, ignore pixels
(255) excluded; macro-F1 is the mean per-class F1 over the classes present in the truth or the
prediction.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch import nn

from lale.data.schema.aras import ARAS400K
from lale.data.synthetic import generate_scene, patch_rng
from lale.models import create_model
from lale.profiling.environment import collect_environment

RESULTS = Path(__file__).resolve().parent / "results"
NUM_CLASSES = ARAS400K.num_classes
IGNORE = ARAS400K.ignore_index
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Kind = Literal["colour", "spatial"]
Labels = NDArray[np.uint8]
Images = NDArray[np.uint8]


# --------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Split:
    """Patches of one split held in memory.

    Attributes:
        images: ``N×H×W×3`` uint8 true colour.
        labels: ``N×H×W`` uint8 class indices (``IGNORE`` for no class).
    """

    images: Images
    labels: Labels

    def __len__(self) -> int:
        return len(self.images)

    def class_pixels(self) -> list[int]:
        """Label pixels per class (ignore pixels not counted)."""
        counts = np.bincount(self.labels.ravel(), minlength=256)
        return [int(c) for c in counts[:NUM_CLASSES]]

    def class_fractions(self) -> dict[str, float]:
        """Share of the label pixels in each class, by class name."""
        counts = self.class_pixels()
        total = max(sum(counts), 1)
        return {name: c / total for name, c in zip(ARAS400K.names, counts, strict=True)}


def _generate_range(
    seed: int, split: str, start: int, stop: int, size: int
) -> tuple[Images, Labels]:
    pairs = [generate_scene(patch_rng(seed, split, i), size) for i in range(start, stop)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def generate_split(
    split: str,
    count: int,
    size: int,
    seed: int,
    workers: int,
    advance: Callable[[int], None],
) -> Split:
    """Generate patches ``0..count-1`` of ``split`` (the same as ``write_dataset`` writes)."""
    chunk = 8
    ranges = [(a, min(a + chunk, count)) for a in range(0, count, chunk)]
    parts: list[tuple[Images, Labels]] = []
    if workers <= 1:
        for a, b in ranges:
            parts.append(_generate_range(seed, split, a, b, size))
            advance(b - a)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_generate_range, seed, split, a, b, size) for a, b in ranges]
            for (a, b), fut in zip(ranges, futures, strict=True):
                parts.append(fut.result())
                advance(b - a)
    return Split(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def normalise(rgb: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """uint8 RGB → float32, ImageNet mean/std per band along ``channel_dim``."""
    shape = [1] * rgb.ndim
    shape[channel_dim] = 3
    mean = torch.tensor(IMAGENET_MEAN).view(shape)
    std = torch.tensor(IMAGENET_STD).view(shape)
    return (rgb.float() / 255.0 - mean) / std


# ------------------------------------------------------------------------------------ metrics


def confusion_matrix(truth: Labels, pred: Labels) -> NDArray[np.int64]:
    """``C×C`` counts (rows: truth, columns: prediction) over all pixels whose truth is a class."""
    valid = truth != IGNORE
    t = truth[valid].astype(np.int64)
    p = pred[valid].astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= NUM_CLASSES):
        raise ValueError("predictions must be class indices")
    counts = np.bincount(t * NUM_CLASSES + p, minlength=NUM_CLASSES * NUM_CLASSES)
    return counts.reshape(NUM_CLASSES, NUM_CLASSES)


@dataclass(frozen=True)
class Scores:
    """Scores derived from one confusion matrix over a whole split."""

    confusion: NDArray[np.int64]

    @property
    def per_class_f1(self) -> list[float | None]:
        """F1 of each class; ``None`` for a class absent from both truth and prediction."""
        tp = np.diag(self.confusion).astype(np.float64)
        fp = self.confusion.sum(0) - tp
        fn = self.confusion.sum(1) - tp
        denom = 2 * tp + fp + fn
        return [None if d == 0 else float(2 * t / d) for t, d in zip(tp, denom, strict=True)]

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the classes present in the truth or the prediction."""
        present = [f for f in self.per_class_f1 if f is not None]
        return float(np.mean(present)) if present else float("nan")

    @property
    def overall_accuracy(self) -> float:
        """Share of correctly classified pixels."""
        return float(np.trace(self.confusion) / max(int(self.confusion.sum()), 1))


@dataclass
class MethodResult:
    """One evaluated method: its scores and how it was obtained."""

    name: str
    kind: Kind
    description: str
    scores: Scores
    params: int
    fit_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        f1 = self.scores.per_class_f1
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "macro_f1": self.scores.macro_f1,
            "overall_accuracy": self.scores.overall_accuracy,
            "per_class_f1": dict(zip(ARAS400K.names, f1, strict=True)),
            "confusion": self.scores.confusion.tolist(),
            "params": self.params,
            "fit_seconds": round(self.fit_seconds, 2),
            **self.extra,
        }


# ------------------------------------------------------------------------------------- losses


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus multiclass soft Dice, ignore pixels excluded from both.

    Args:
        logits: ``B×C`` (pixels) or ``B×C×H×W`` (images).
        target: ``B`` or ``B×H×W`` class indices; ``IGNORE`` marks pixels without a class.

    Returns:
        ``CE + (1 − Dice)``, the Dice term averaged over the classes present in ``target``
        (per class over the whole batch, so small classes weigh as much as large ones).
    """
    valid = target != IGNORE
    if not bool(valid.any()):
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
    probs = logits.softmax(1)
    onehot = F.one_hot(target.where(valid, 0), logits.shape[1]).movedim(-1, 1).to(probs.dtype)
    mask = valid.unsqueeze(1).to(probs.dtype)
    dims = (0, *range(2, logits.ndim))
    intersection = (probs * onehot * mask).sum(dims)
    cardinality = ((probs + onehot) * mask).sum(dims)
    present = (onehot * mask).sum(dims) > 0
    dice = (2 * intersection + 1.0) / (cardinality + 1.0)
    return ce + (1.0 - dice[present]).mean()


def lr_factor(progress: float, step: int, warmup_steps: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 as ``progress`` goes 0 → 1."""
    warm = min(1.0, (step + 1) / warmup_steps)
    return warm * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


# ----------------------------------------------------------------------- colour-only methods


def class_means(train: Split) -> NDArray[np.float64]:
    """Mean RGB (0–255) of each class over all training pixels; NaN for absent classes."""
    sums = np.zeros((NUM_CLASSES, 3))
    counts = np.zeros(NUM_CLASSES)
    for image, labels in zip(train.images, train.labels, strict=True):
        lab = labels.ravel()
        keep = lab != IGNORE
        lab = lab[keep]
        counts += np.bincount(lab, minlength=NUM_CLASSES)[:NUM_CLASSES]
        for band in range(3):
            w = image[..., band].ravel()[keep].astype(np.float64)
            sums[:, band] += np.bincount(lab, weights=w, minlength=NUM_CLASSES)[:NUM_CLASSES]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def nearest_mean(pixels: NDArray[np.floating], means: NDArray[np.float64]) -> Labels:
    """Index of the nearest class mean (Euclidean in RGB) of each ``…×3`` pixel."""
    d = ((pixels[..., None, :].astype(np.float64) - means) ** 2).sum(-1)
    d = np.where(np.isnan(d), np.inf, d)  # classes never seen in training are never predicted
    return d.argmin(-1).astype(np.uint8)


def colour_lut(train: Split, bits: int, means: NDArray[np.float64]) -> Labels:
    """Majority training class of each RGB bin (``2**bits`` levels per band), a colour lookup.

    This is the best any per-pixel colour rule can do on the training pixels at that colour
    resolution (for overall accuracy). Bins no training pixel fell in take the class of the
    nearest class mean of the bin centre.
    """
    levels = 1 << bits
    counts = np.zeros((levels**3, NUM_CLASSES), np.int64)
    for image, labels in zip(train.images, train.labels, strict=True):
        bins = _rgb_bins(image, bits).ravel()
        lab = labels.ravel()
        keep = lab != IGNORE
        idx = bins[keep] * NUM_CLASSES + lab[keep]
        counts += np.bincount(idx, minlength=counts.size).reshape(counts.shape)
    step = 256 // levels
    grid = np.stack(np.meshgrid(*[np.arange(levels)] * 3, indexing="ij"), -1).reshape(-1, 3)
    lut = nearest_mean(grid * step + (step - 1) / 2, means)
    seen = counts.sum(1) > 0
    lut[seen] = counts[seen].argmax(1)
    return lut


def _rgb_bins(image: Images, bits: int) -> NDArray[np.int64]:
    q = (image >> (8 - bits)).astype(np.int64)
    return (q[..., 0] << (2 * bits)) | (q[..., 1] << bits) | q[..., 2]


def sample_pixels(
    train: Split, per_patch: int, seed: int
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """``per_patch`` random labelled pixels of every training patch: ``(N×3 RGB, N labels)``."""
    rng = np.random.default_rng(seed)
    rgb, lab = [], []
    for image, labels in zip(train.images, train.labels, strict=True):
        flat_lab = labels.ravel()
        candidates = np.flatnonzero(flat_lab != IGNORE)
        take = rng.choice(candidates, size=min(per_patch, candidates.size), replace=False)
        rgb.append(image.reshape(-1, 3)[take])
        lab.append(flat_lab[take].astype(np.int64))
    return np.concatenate(rgb), np.concatenate(lab)


def pixel_net(hidden: int | None) -> nn.Module:
    """Logistic regression (``hidden=None``: Linear 3→C) or a one-hidden-layer MLP on RGB."""
    if hidden is None:
        return nn.Linear(3, NUM_CLASSES)
    return nn.Sequential(nn.Linear(3, hidden), nn.GELU(), nn.Linear(hidden, NUM_CLASSES))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_pixel_net(
    net: nn.Module,
    rgb: NDArray[np.uint8],
    labels: NDArray[np.int64],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    advance: Callable[[], None],
) -> list[float]:
    """Train ``net`` on RGB pixels with AdamW and the same CE + Dice loss as ``lale_t``.

    Runs on one thread: the ops are tiny, and on a busy machine the thread hand-offs made each
    step ~10× slower with two.
    """
    gen = torch.Generator().manual_seed(seed)
    x = normalise(torch.from_numpy(rgb), channel_dim=1)
    y = torch.from_numpy(labels)
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    losses = []
    net.train()
    with torch_threads(1):
        for step in range(steps):
            idx = torch.randint(len(x), (batch_size,), generator=gen)
            for group in opt.param_groups:
                group["lr"] = lr * lr_factor(step / steps, step, warmup_steps=50)
            loss = dice_ce_loss(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            advance()
    return losses


@torch.inference_mode()
def predict_pixel_net(net: nn.Module, images: Images) -> Labels:
    """Per-pixel class of each ``N×H×W×3`` image from its RGB alone."""
    net.eval()
    out = np.empty(images.shape[:-1], np.uint8)
    for i, image in enumerate(images):
        x = normalise(torch.from_numpy(image.reshape(-1, 3)), channel_dim=1)
        out[i] = net(x).argmax(1).to(torch.uint8).numpy().reshape(image.shape[:-1])
    return out


# ------------------------------------------------------------------------------------ lale_t


def batches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless shuffled mini-batches of indices ``0..n-1`` (a new permutation per epoch)."""
    while True:
        perm = torch.randperm(n, generator=gen)
        for a in range(0, n - batch_size + 1, batch_size):
            yield perm[a : a + batch_size]


def augment(
    images: torch.Tensor, labels: torch.Tensor, crop: int | None, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ``crop``×``crop`` window and random horizontal and vertical flips, per sample.

    Args:
        images: ``B×3×H×W`` uint8.
        labels: ``B×H×W`` class indices.
        crop: Side of the random window; ``None`` keeps the whole patch.
        gen: Random generator (crops and flips are reproducible from it).
    """
    h, w = labels.shape[-2:]
    ch, cw = (h, w) if crop is None else (min(crop, h), min(crop, w))
    tops = torch.randint(h - ch + 1, (len(images),), generator=gen).tolist()
    lefts = torch.randint(w - cw + 1, (len(images),), generator=gen).tolist()
    flips = (torch.rand(len(images), 2, generator=gen) < 0.5).tolist()
    out_x, out_y = [], []
    for x, y, top, left, (fh, fv) in zip(images, labels, tops, lefts, flips, strict=True):
        x, y = x[:, top : top + ch, left : left + cw], y[top : top + ch, left : left + cw]
        dims = [d for d, f in ((-1, fh), (-2, fv)) if f]
        out_x.append(x.flip(dims) if dims else x)
        out_y.append(y.flip(dims) if dims else y)
    return torch.stack(out_x), torch.stack(out_y)


@dataclass(frozen=True)
class TrainConfig:
    """How ``lale_t`` is trained (see ``--help`` for each option)."""

    model: str
    minutes: float
    steps: int
    batch_size: int
    crop: int | None
    lr: float
    weight_decay: float
    warmup_steps: int
    seed: int


def train_segmenter(
    cfg: TrainConfig, train: Split, progress: Progress
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``cfg.model`` from scratch for ``cfg.steps`` steps or ``cfg.minutes``, if sooner.

    AdamW, warm-up then cosine decay, CE + Dice, random crops and flips, ImageNet normalisation.
    Training progress is the larger of the step and the clock fractions, so the cosine schedule
    ends where training ends even on a machine slower than expected. Returns the model and a log
    of the run.
    """
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=NUM_CLASSES, in_channels=3)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    images = torch.from_numpy(train.images).permute(0, 3, 1, 2)  # N×3×H×W uint8 view
    labels = torch.from_numpy(train.labels)
    budget = cfg.minutes * 60.0

    def fraction(step: int, elapsed: float) -> float:
        by_steps = step / cfg.steps if cfg.steps else 0.0
        return max(by_steps, elapsed / budget if budget > 0 else 0.0)

    task = progress.add_task(f"train {cfg.model}", total=1.0)
    losses: list[float] = []
    start = time.perf_counter()
    step = 0
    for idx in batches(len(images), cfg.batch_size, gen):
        done = fraction(step, time.perf_counter() - start)
        if done >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(done, step, cfg.warmup_steps)
        x, y = augment(images[idx], labels[idx], cfg.crop, gen)
        loss = dice_ce_loss(model(normalise(x, channel_dim=1)), y.long())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        recent = float(np.mean(losses[-20:]))
        progress.update(
            task,
            completed=fraction(step, time.perf_counter() - start),
            description=f"train {cfg.model} step {step} loss {recent:.3f}",
        )
    seconds = time.perf_counter() - start
    progress.update(task, completed=1.0)
    log = {
        "steps": step,
        "stopped_by": "steps" if cfg.steps and step >= cfg.steps else "clock",
        "samples_seen": step * cfg.batch_size,
        "passes": round(step * cfg.batch_size / len(images), 2),
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(step, 1), 3),
        "loss_first_20": round(float(np.mean(losses[:20])), 4) if losses else None,
        "loss_last_20": round(float(np.mean(losses[-20:])), 4) if losses else None,
        "loss_per_20_steps": [
            round(float(np.mean(losses[a : a + 20])), 4) for a in range(0, len(losses), 20)
        ],
    }
    return model, log


@torch.inference_mode()
def predict_segmenter(model: nn.Module, images: Images, batch_size: int) -> Labels:
    """Arg-max class maps of ``N×H×W×3`` images."""
    model.eval()
    out = np.empty(images.shape[:-1], np.uint8)
    for a in range(0, len(images), batch_size):
        x = torch.from_numpy(images[a : a + batch_size]).permute(0, 3, 1, 2)
        out[a : a + batch_size] = model(normalise(x, 1)).argmax(1).to(torch.uint8).numpy()
    return out


# ----------------------------------------------------------------------------------- outputs


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def save_prediction_mosaic(
    path: Path,
    images: Images,
    truth: Labels,
    predictions: dict[str, Labels],
    per_row: int = 2,
    gap: int = 6,
    max_bytes: int | None = 1_500_000,
) -> None:
    """Tile samples as image | mask | each prediction, ``per_row`` samples a row, plus a legend.

    A PNG over ``max_bytes`` is written again with a 256-colour palette.
    """
    n, h, w = truth.shape
    titles = ["image", "mask", *predictions]
    cols = len(titles)
    header, legend = 22, 30
    rows = -(-n // per_row)
    group_w = cols * w + (cols - 1) * gap
    width = per_row * group_w + (per_row + 1) * 3 * gap
    height = header + rows * (h + gap) + gap + legend
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(14)
    for k in range(n):
        r, c = divmod(k, per_row)
        x0 = 3 * gap + c * (group_w + 3 * gap)
        y0 = header + r * (h + gap)
        tiles = [images[k], *(ARAS400K.labels_to_rgb(m[k]) for m in (truth, *predictions.values()))]
        for j, tile in enumerate(tiles):
            canvas.paste(Image.fromarray(tile), (x0 + j * (w + gap), y0))
    for c in range(min(per_row, n)):
        x0 = 3 * gap + c * (group_w + 3 * gap)
        for j, title in enumerate(titles):
            draw.text((x0 + j * (w + gap) + 4, 3), title, fill="black", font=font)
    x, y = 3 * gap, height - legend + 6
    for name, colour in zip(ARAS400K.names, ARAS400K.colors, strict=True):
        draw.rectangle((x, y, x + 16, y + 16), fill=colour, outline="black")
        draw.text((x + 22, y), name, fill="black", font=font)
        x += 40 + int(draw.textlength(name, font=font))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG", optimize=True)
    if max_bytes is not None and path.stat().st_size > max_bytes:
        # 256 adaptive colours look the same here and compress ~3× better
        canvas.quantize(256, dither=Image.Dither.NONE).save(path, format="PNG", optimize=True)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def report_markdown(report: dict[str, Any], results: Sequence[MethodResult]) -> str:
    """The markdown report: context list, score table, verdict."""
    env, s, tr = report["environment"], report["settings"], report["training"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    limits = [f"{s['steps']} steps"] if s["steps"] else []
    limits += [f"{s['minutes']} min"] if s["minutes"] else []
    crop = min(s["crop"] or s["size"], s["size"])
    train_frac = ", ".join(f"{k} {v:.1%}" for k, v in report["class_fractions"]["train"].items())
    test_frac = ", ".join(f"{k} {v:.1%}" for k, v in report["class_fractions"]["test"].items())
    lines = [
        "# Synthetic separability: colour lookup vs texture and context",
        "",
        f"Generated by `{report['command']}`.",
        "",
        f"- **device**: {env['device']} ({env['device_type']}), {env['cpu_count']} logical CPUs; "
        f"{env['platform']}",
        f"- **threads**: {env['torch_threads']}",
        f"- **versions**: {versions}",
        f"- **date**: {env['date']}",
        f"- **data**: {s['train']} train / {s['test']} test synthetic patches of "
        f"{s['size']}×{s['size']}, seed {s['seed']} (`lale.data.synthetic`, generated in memory)",
        f"- **class pixels, train**: {train_frac}",
        f"- **class pixels, test**: {test_frac}",
        f"- **{s['model']}**: from scratch, {tr['steps']} steps ({tr['passes']} passes over the "
        f"training patches) in "
        f"{tr['train_seconds'] / 60:.1f} min (limit: "
        + " or ".join(limits)
        + (", whichever first" if len(limits) > 1 else "")
        + f"; stopped by the {tr['stopped_by']}), batch {s['batch_size']} of "
        + (f"random {crop}×{crop} crops" if crop < s["size"] else "whole patches")
        + f" (evaluated on whole {s['size']}×{s['size']} patches), AdamW lr {s['lr']} "
        f"(warm-up {s['warmup_steps']} steps, "
        f"cosine), weight decay {s['weight_decay']}, CE + Dice, random flips, ImageNet "
        f"normalisation; loss {tr['loss_first_20']} → {tr['loss_last_20']} (mean of first / "
        "last 20 steps)",
        f"- **colour-only**: RGB of one pixel; logistic regression and MLP trained with AdamW and "
        f"the same CE + Dice loss on {s['pixels_per_patch']} random pixels per training patch, "
        f"{s['pixel_steps']} steps of {s['pixel_batch']} pixels (on 1 thread)",
        f"- **total run time**: {report['total_seconds'] / 60:.1f} min",
        "- **metric**: one confusion matrix over the whole test split (ignore pixels excluded); "
        "macro-F1 = mean F1 over the classes present in truth or prediction; OA = overall "
        "accuracy",
        "",
    ]
    headers = ["method", "input", "params", "macro-F1", "OA", *ARAS400K.names]
    lines += ["| " + " | ".join(headers) + " |", "| --- | --- |" + " ---: |" * (len(headers) - 2)]
    for r in results:
        cells = [
            f"`{r.name}`",
            "RGB of one pixel" if r.kind == "colour" else "image",
            f"{r.params:,}",
            f"**{r.scores.macro_f1:.3f}**",
            f"{r.scores.overall_accuracy:.3f}",
            *(_fmt(f) for f in r.scores.per_class_f1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"- `{r.name}`: {r.description}" for r in results), ""]
    v = report["verdict"]
    lines += [
        "## Verdict",
        "",
        f"`{v['model']}` reaches macro-F1 **{v['model_macro_f1']:.3f}** against "
        f"**{v['best_colour_macro_f1']:.3f}** for the best colour-only classifier "
        f"(`{v['best_colour']}`): {v['margin']:+.3f} "
        f"({'the scenes need texture and context' if v['margin'] > 0 else 'NOT separated'}).",
        "",
        "Samples (test split; image | mask | predictions): `synthetic_samples.png`.",
        "",
    ]
    return "\n".join(lines)


def results_table(results: Sequence[MethodResult]) -> Table:
    table = Table(title="test split")
    for col in ("method", "macro-F1", "OA", *ARAS400K.names):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in results:
        table.add_row(
            r.name,
            f"{r.scores.macro_f1:.3f}",
            f"{r.scores.overall_accuracy:.3f}",
            *(_fmt(f) for f in r.scores.per_class_f1),
        )
    return table


# --------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    add = parser.add_argument
    add("--train", type=int, default=400, help="training patches (default 400)")
    add("--test", type=int, default=100, help="test patches (default 100)")
    add("--size", type=int, default=256, help="patch side in pixels (default 256)")
    add("--seed", type=int, default=0, help="dataset seed; also seeds sampling and init")
    add("--workers", type=int, default=2, help="processes generating patches (default 2)")
    add("--threads", type=int, default=2, help="torch threads (default 2; 1 on a busy machine)")
    add("--model", default="lale_t", help="registered model to train (default lale_t)")
    add("--steps", type=int, default=1000, help="training steps (default 1000; 0: no limit)")
    add("--minutes", type=float, default=10.0, help="training time limit (default 10; 0: none)")
    add("--batch-size", type=int, default=8, help="training batch (default 8)")
    add("--crop", type=int, default=128, help="random training crop side, 0: whole patch")
    add("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    add("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default 0.01)")
    add("--warmup-steps", type=int, default=20, help="linear warm-up steps (default 20)")
    add("--pixels-per-patch", type=int, default=2000, help="colour-classifier training pixels")
    add("--pixel-steps", type=int, default=2000, help="AdamW steps of the pixel classifiers")
    add("--pixel-batch", type=int, default=4096, help="pixels per pixel-classifier step")
    add("--pixel-lr", type=float, default=1e-2, help="peak lr of the pixel classifiers")
    add("--lut-bits", type=int, default=5, help="colour look-up table bits per band (default 5)")
    add("--samples", type=int, default=8, help="test samples in the mosaic (default 8)")
    add("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.steps < 0 or args.minutes < 0 or not (args.steps or args.minutes):
        parser.error("--steps and --minutes must be non-negative and not both 0")
    if args.train < 1 or args.test < 1 or args.batch_size < 1:
        parser.error("--train, --test and --batch-size must be at least 1")
    if args.batch_size > args.train:
        parser.error(f"--batch-size {args.batch_size} exceeds --train {args.train}")
    if not 1 <= args.lut_bits <= 8:
        parser.error("--lut-bits must be in 1..8")
    return args


def colour_methods(
    args: argparse.Namespace, train: Split, test: Split, progress: Progress
) -> list[tuple[MethodResult, Labels]]:
    """Fit every colour-only classifier on ``train``; score each on ``test`` (with predictions)."""
    out: list[tuple[MethodResult, Labels]] = []

    def add(
        name: str, description: str, pred: Labels, params: int, tic: float, **extra: Any
    ) -> None:
        scores = Scores(confusion_matrix(test.labels, pred))
        result = MethodResult(
            name, "colour", description, scores, params, time.perf_counter() - tic, extra
        )
        out.append((result, pred))

    tic = time.perf_counter()
    means = class_means(train)
    pred = np.stack([nearest_mean(image, means) for image in test.images])
    description = "the class whose mean training RGB is nearest (Euclidean)"
    add("nearest class mean", description, pred, int(np.isfinite(means).sum()), tic)

    tic = time.perf_counter()
    lut = colour_lut(train, args.lut_bits, means)
    pred = lut[_rgb_bins(test.images, args.lut_bits)]
    levels = 1 << args.lut_bits
    description = (
        f"majority training class of the pixel's RGB bin ({levels} levels per band; empty bins: "
        "nearest class mean), the best per-pixel colour rule for accuracy on the training pixels"
    )
    add(f"colour LUT {levels}³", description, pred, int(lut.size), tic)

    rgb, lab = sample_pixels(train, args.pixels_per_patch, args.seed)
    pixel_models: dict[str, tuple[int | None, str]] = {
        "logistic regression": (None, "multinomial logistic regression (Linear 3→7)"),
        "pixel MLP": (64, "MLP 3→64→7 (GELU), a stronger colour-only baseline"),
    }
    for name, (hidden, description) in pixel_models.items():
        torch.manual_seed(args.seed)
        net = pixel_net(hidden)
        task = progress.add_task(f"fit {name}", total=args.pixel_steps)
        tic = time.perf_counter()
        steps, batch, lr = args.pixel_steps, args.pixel_batch, args.pixel_lr
        advance = lambda task=task: progress.advance(task)  # noqa: E731
        losses = fit_pixel_net(net, rgb, lab, steps, batch, lr, args.seed, advance)
        pred = predict_pixel_net(net, test.images)
        params = sum(p.numel() for p in net.parameters())
        loss = round(float(np.mean(losses[-100:])), 4)
        add(name, description, pred, params, tic, train_pixels=len(lab), loss_last_100=loss)
    return out


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it (no machine paths in results)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    console = Console(width=max(Console().width, 150))
    t0 = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        splits = {}
        for split, count in (("train", args.train), ("test", args.test)):
            task = progress.add_task(f"generate {split}", total=count)
            advance = lambda k, task=task: progress.advance(task, k)  # noqa: E731
            splits[split] = generate_split(
                split, count, args.size, args.seed, args.workers, advance
            )
        train, test = splits["train"], splits["test"]
        gen_seconds = time.perf_counter() - t0
        scored = colour_methods(args, train, test, progress)
        cfg = TrainConfig(
            model=args.model,
            minutes=args.minutes,
            steps=args.steps,
            batch_size=args.batch_size,
            crop=args.crop or None,
            lr=args.lr,
            weight_decay=args.weight_decay,
            warmup_steps=args.warmup_steps,
            seed=args.seed,
        )
        model, log = train_segmenter(cfg, train, progress)
        task = progress.add_task(f"evaluate {args.model}", total=None)
        pred = predict_segmenter(model, test.images, batch_size=args.batch_size)
        progress.update(task, total=1, completed=1)
    description = (
        f"{args.model} trained from scratch for {log['steps']} steps "
        f"({log['train_seconds'] / 60:.1f} min)"
    )
    scores = Scores(confusion_matrix(test.labels, pred))
    params = sum(p.numel() for p in model.parameters())
    ours = MethodResult(args.model, "spatial", description, scores, params, log["train_seconds"])
    scored.append((ours, pred))
    results = [r for r, _ in scored]
    console.print(results_table(results))

    best, best_pred = max(scored[:-1], key=lambda rp: rp[0].scores.macro_f1)
    n = min(args.samples, len(test))
    png = args.out_dir / "synthetic_samples.png"
    shown = {ours.name: pred[:n], best.name: best_pred[:n]}
    save_prediction_mosaic(png, test.images[:n], test.labels[:n], shown)
    margin = ours.scores.macro_f1 - best.scores.macro_f1
    report: dict[str, Any] = {
        "benchmark": "synthetic_separability",
        "command": " ".join(
            ["python benchmarks/synthetic_separability.py", *(argv or sys.argv[1:])]
        ),
        "environment": asdict(collect_environment("cpu")),
        "settings": {k: _shown(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "class_names": list(ARAS400K.names),
        "class_fractions": {k: v.class_fractions() for k, v in splits.items()},
        "generation_seconds": round(gen_seconds, 1),
        "training": log,
        "methods": [r.to_dict() for r in results],
        "verdict": {
            "model": ours.name,
            "model_macro_f1": ours.scores.macro_f1,
            "best_colour": best.name,
            "best_colour_macro_f1": best.scores.macro_f1,
            "margin": margin,
        },
        "samples_png": png.name,
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    js = args.out_dir / "synthetic_separability.json"
    js.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md = args.out_dir / "synthetic_separability.md"
    md.write_text(report_markdown(report, results), encoding="utf-8")
    console.print(
        f"{ours.name} macro-F1 {ours.scores.macro_f1:.3f} vs best colour-only ({best.name}) "
        f"{best.scores.macro_f1:.3f}: {margin:+.3f}; total {report['total_seconds'] / 60:.1f} min"
    )
    console.print(f"wrote {md}, {js}, {png} ({png.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tests for the batch augmentations and normalisation (lale.data.transforms)."""

from __future__ import annotations

import pytest
import torch

from lale.data.schema import ARAS400K, IMAGENET_MEAN, IMAGENET_STD, ClassSchema, ImageSpec
from lale.data.transforms import (
    AugmentConfig,
    BatchTransform,
    Normalize,
    eval_transform,
    random_brightness_contrast,
    random_flip,
    random_rot90,
    train_transform,
)

# Identity scaling and statistics: the transform's output image equals its (float) input.
PLAIN = ImageSpec(band_count=3, dtype="float32", scale=1.0, mean=(0.0,) * 3, std=(1.0,) * 3)
GEOMETRY = AugmentConfig(brightness_contrast=0.0)
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _batch(b: int = 32, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose channels encode (row, col, label); masks with labels and ignore pixels."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, 7, (b, size, size), generator=g, dtype=torch.uint8)
    mask[torch.rand(b, size, size, generator=g) < 0.2] = 255
    r, c = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    image = torch.stack([r.expand(b, -1, -1), c.expand(b, -1, -1), mask.long()], 1).float()
    return image, mask


def _dihedral(x: torch.Tensor) -> list[torch.Tensor]:
    """The eight flips/rotations of ``…×H×W``."""
    out = []
    for t in (x, x.transpose(-1, -2)):
        for k in range(4):
            out.append(t.rot90(k, (-2, -1)))
    return out


@pytest.mark.parametrize("device", DEVICES)
def test_geometry_moves_image_and_mask_together(device: str) -> None:
    image, mask = _batch()
    gen = torch.Generator().manual_seed(1)
    t = BatchTransform(PLAIN, GEOMETRY, gen)
    out, lab = t(image.to(device), mask.to(device))
    out, lab = out.cpu(), lab.cpu()
    assert lab.dtype == torch.int64 and out.dtype == torch.float32
    assert torch.equal(out[:, 2].long(), lab)  # label channel still equals the mask: aligned
    changed = 0
    for i in range(len(image)):
        options = _dihedral(image[i])
        which = [j for j, o in enumerate(options) if torch.equal(o, out[i])]
        assert which, "each sample is a flip/rotation of its input"
        assert torch.equal(_dihedral(mask[i].long())[which[0]], lab[i])
        assert int((lab[i] == 255).sum()) == int((mask[i] == 255).sum())
        changed += which[0] != 0
    assert 0 < changed < len(image)  # per-sample random, not all or nothing


def test_same_generator_state_gives_the_same_batch() -> None:
    _, mask = _batch()
    u8 = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    t1 = train_transform(ARAS400K, generator=torch.Generator().manual_seed(7))
    t2 = train_transform(ARAS400K, generator=torch.Generator().manual_seed(7))
    t3 = train_transform(ARAS400K, generator=torch.Generator().manual_seed(8))
    a, b, c = t1(u8, mask), t2(u8, mask), t3(u8, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    again = t1(u8, mask)  # the generator advanced: a new draw
    assert not torch.equal(again[0], a[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_gpu_agree_for_one_seed() -> None:
    _, mask = _batch()
    u8 = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    cpu = train_transform(ARAS400K, generator=torch.Generator().manual_seed(3))(u8, mask)
    gpu = train_transform(ARAS400K, generator=torch.Generator().manual_seed(3))(
        u8.cuda(), mask.cuda()
    )
    assert torch.allclose(cpu[0], gpu[0].cpu(), atol=1e-5) and torch.equal(cpu[1], gpu[1].cpu())


def test_probabilities_are_per_sample() -> None:
    n = 4000
    image = torch.zeros(n, 1, 2, 2)
    image[:, 0, 0, 0] = 1.0
    mask = image[:, 0].to(torch.uint8)
    gen = torch.Generator().manual_seed(0)
    flipped, _ = random_flip(image, mask, 0.5, -1, gen)
    assert abs(float(flipped[:, 0, 0, 1].mean()) - 0.5) < 0.04
    vflipped, _ = random_flip(image, mask, 0.5, -2, gen)
    assert abs(float(vflipped[:, 0, 1, 0].mean()) - 0.5) < 0.04
    rotated, rmask = random_rot90(image, mask, 0.5, gen)
    assert abs(float(rotated[:, 0, 0, 0].mean()) - 0.5) < 0.04  # 3 of 4 turns move the corner
    assert torch.equal(rotated[:, 0].to(torch.uint8), rmask)
    bright = random_brightness_contrast(torch.full((n, 1, 2, 2), 0.5), 0.3, generator=gen)
    assert abs(float((bright[:, 0, 0, 0] != 0.5).float().mean()) - 0.3) < 0.04


def test_brightness_contrast_is_affine_per_sample_and_clipped() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 5, 5, generator=gen) * 0.5 + 0.25
    y = random_brightness_contrast(x, 1.0, 0.2, 0.2, gen, clip=None)
    for i in range(16):  # y = a·x + b with one (a, b) per sample, a in 1 ± 0.2, b in ±0.2
        a = (y[i, 0, 0, 1] - y[i, 0, 0, 0]) / (x[i, 0, 0, 1] - x[i, 0, 0, 0])
        b = y[i, 0, 0, 0] - a * x[i, 0, 0, 0]
        assert 0.8 <= float(a) <= 1.2 and -0.2 <= float(b) <= 0.2
        assert torch.allclose(y[i], a * x[i] + b, atol=1e-5)
    z = random_brightness_contrast(torch.ones(8, 1, 2, 2), 1.0, 0.5, 0.5, gen)
    assert float(z.max()) <= 1.0 and float(z.min()) >= 0.0


UINT16 = ImageSpec(
    band_count=4, dtype="uint16", scale=1e4, offset=-1e3, mean=(0.1,) * 4, std=(0.05,) * 4
)


@pytest.mark.parametrize("spec", [ARAS400K.image, UINT16], ids=["uint8-rgb", "uint16-4band"])
def test_fused_pipeline_equals_the_step_by_step_ops(spec: ImageSpec) -> None:
    raw = torch.randint(0, 250, (16, spec.channels, 8, 8))
    image = raw.to(torch.uint8) if spec.dtype == "uint8" else raw.float() * 40  # uint16 as float
    mask = torch.randint(0, 7, (16, 8, 8), dtype=torch.uint8)
    aug = AugmentConfig(brightness_contrast=0.7, brightness=0.4, contrast=0.4)
    fused = BatchTransform(spec, aug, torch.Generator().manual_seed(4))(image, mask)
    g = torch.Generator().manual_seed(4)
    x, m = random_flip(image, mask, aug.hflip, -1, g)
    x, m = random_flip(x, m, aug.vflip, -2, g)
    x, m = random_rot90(x, m, aug.rot90, g)
    norm = Normalize(spec)
    clip = (0.0, 1.0) if spec.dtype == "uint8" else None
    y = random_brightness_contrast(norm.scale(x), 0.7, 0.4, 0.4, g, clip)
    assert torch.allclose(fused[0], norm.standardize(y), atol=1e-4)
    assert torch.equal(fused[1], m.long())


def test_normalize_uint8_rgb_with_imagenet_stats() -> None:
    image = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    out = eval_transform(ARAS400K)(image, torch.zeros(2, 4, 4, dtype=torch.uint8))[0]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(out, (image.float() / 255 - mean) / std, atol=1e-5)
    assert torch.allclose(Normalize(ARAS400K.image)(image[0]), out[0], atol=1e-6)


def test_normalize_uint16_reflectance_with_per_band_stats() -> None:
    spec = ImageSpec(
        band_count=4, dtype="uint16", scale=10000, offset=-1000, mean=(0.1,) * 4, std=(0.05,) * 4
    )
    raw = torch.tensor([1000.0, 2000.0, 3000.0]).view(1, 1, 1, 3).expand(1, 4, 1, 3)
    out = Normalize(spec)(raw)
    assert torch.allclose(out[0, :, 0], torch.tensor([-2.0, 0.0, 2.0]).expand(4, 3), atol=1e-5)
    norm = Normalize(spec)
    assert torch.allclose(norm.standardize(norm.scale(raw)), out, atol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        norm(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="compute_band_stats"):
        Normalize(ImageSpec(band_count=12, dtype="float32", scale=1.0))


def test_pipeline_keeps_padding_ignored_and_outputs_model_ready_tensors() -> None:
    schema = ClassSchema(ARAS400K.names, ARAS400K.colors)
    image = torch.zeros(4, 3, 16, 16, dtype=torch.uint8)
    mask = torch.full((4, 16, 16), 255, dtype=torch.uint8)
    image[:, :, :10, :6] = 255
    mask[:, :10, :6] = 3
    out, lab = train_transform(schema, generator=torch.Generator().manual_seed(0))(image, mask)
    assert out.shape == (4, 3, 16, 16) and lab.dtype == torch.int64
    assert ((lab == 3) == (out[:, 0] > 0)).all()  # the real pixels moved with their labels
    assert int((lab == 255).sum()) == 4 * (256 - 60)


def test_rot90_needs_square_samples_and_shapes_are_checked() -> None:
    image, mask = torch.zeros(2, 3, 4, 6), torch.zeros(2, 4, 6, dtype=torch.uint8)
    with pytest.raises(ValueError, match="square"):
        random_rot90(image, mask, 1.0)
    assert random_rot90(image, mask, 0.0)[0] is image
    with pytest.raises(ValueError, match="B×C×H×W"):
        random_flip(image, mask[:, :3], 0.5, -1)
    with pytest.raises(ValueError, match="dim"):
        random_flip(image, mask, 0.5, 1)
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(hflip=1.5)

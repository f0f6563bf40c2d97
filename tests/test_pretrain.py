"""LALE as a backbone: timm/SMP registration, ``lale pretrain``, ``--init``, ``lale hub push``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import segmentation_models_pytorch as smp
import timm
import torch
from PIL import Image
from typer.testing import CliRunner

import lale
import lale.models
from lale import cli
from lale.models.timm_lale import TIMM_VARIANTS

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--epochs", "2", "--batch-size", "8", "--img-size", "32", "--warmup-epochs", "1"]


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, result.output


def write_folder(root: Path, train: int = 16, val: int = 6) -> Path:
    """Three colour classes, ``train`` + ``val`` small PNGs each."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for c, name in enumerate(("red", "green", "blue")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.integers(0, 80, (36, 40, 3), dtype=np.uint8)
                a[..., c] += 150
                Image.fromarray(a).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("imagefolder"))


@pytest.fixture(scope="module")
def pretrain_run(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pt") / "run"
    code, output = invoke(
        "pretrain", "--data", str(folder), "--out", str(out), *SMALL, "--no-progress"
    )
    assert code == 0, output
    return out


@pytest.fixture(scope="module")
def seg_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seg") / "data"
    code, output = invoke(
        "synth", str(root), "--train", "8", "--val", "4", "--test", "4", "--size", "64",
        "--no-mosaic",
    )  # fmt: skip
    assert code == 0, output
    return root


def fake_hub_cache(repo_folder: Path, cache: Path, repo_id: str) -> None:
    """Place ``repo_folder`` in a Hugging Face cache layout, as ``hf download`` leaves it."""
    org, name = repo_id.split("/")
    base = cache / f"models--{org}--{name}"
    commit = "a" * 40
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    shutil.copytree(repo_folder, base / "snapshots" / commit)


# -- timm and SMP ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TIMM_VARIANTS))
def test_timm_builds_every_lale_variant_as_classifier_and_feature_extractor(name: str) -> None:
    model = timm.create_model(name, num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 10)
    features = timm.create_model(name, features_only=True, in_chans=4).eval()
    assert features.feature_info.reduction() == [4, 8, 16, 32]
    dims = list(TIMM_VARIANTS[name].dims)
    assert features.feature_info.channels() == dims
    outs = features(torch.randn(1, 4, 64, 64))
    shapes = [(d, 64 // r, 64 // r) for d, r in zip(dims, (4, 8, 16, 32), strict=True)]
    assert [tuple(o.shape[1:]) for o in outs] == shapes
    cfg = model.pretrained_cfg
    assert cfg["first_conv"] == "encoder.stem.conv1" and cfg["classifier"] == "head.fc"
    assert cfg["input_size"] == (3, 224, 224) and len(cfg["mean"]) == len(cfg["std"]) == 3
    assert model.get_classifier() is model.head.fc


def test_timm_interface_methods() -> None:
    model = timm.create_model("lale_s1", num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (1, 192, 2, 2)
    assert model.forward_head(feats, pre_logits=True).shape == (1, 192)
    torch.testing.assert_close(model.forward_head(feats), model(x))
    final, inter = model.forward_intermediates(x, indices=2)
    assert [t.shape[1] for t in inter] == [96, 192] and final.shape == feats.shape
    only = model.forward_intermediates(x, indices=[0], stop_early=True, intermediates_only=True)
    assert [t.shape[1] for t in only] == [24]
    model.reset_classifier(3)
    assert model(x).shape == (1, 3)
    model.reset_classifier(0)
    assert model(x).shape == (1, 192)


def test_timm_building_on_the_meta_device_allocates_nothing() -> None:
    with torch.device("meta"):
        model = timm.create_model("lale_s2", features_only=True)
    assert all(p.device.type == "meta" for p in model.parameters())


def test_the_classifier_encoder_has_the_segmentation_networks_tensor_names() -> None:
    seg = lale.create_model("lale_s1", num_classes=7).state_dict()
    clf = timm.create_model("lale_s1").state_dict()
    encoder = {k: v.shape for k, v in clf.items() if k.startswith("encoder.")}
    assert encoder and all(k in seg and seg[k].shape == s for k, s in encoder.items())
    assert set(clf) - set(encoder) == {"head.norm.weight", "head.fc.weight", "head.fc.bias"}


@pytest.mark.parametrize("arch", [smp.Unet, smp.FPN, smp.UPerNet])
def test_smp_decoders_take_lale_as_encoder(arch: type) -> None:
    model = arch("tu-lale_s1", encoder_weights=None, classes=7, in_channels=3)
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 7, 64, 64) and torch.isfinite(out).all()


# -- lale pretrain ---------------------------------------------------------------------------


def test_pretrain_writes_a_run_timm_reads(pretrain_run: Path) -> None:
    files = {p.name for p in pretrain_run.iterdir()}
    assert {"config.json", "model.safetensors", "encoder.safetensors", "pretrain.json",
            "val_metrics.json", "metrics.csv", "history.png"} <= files  # fmt: skip
    scores = json.loads((pretrain_run / "val_metrics.json").read_text())
    assert 0.0 <= scores["top1"] <= 1.0 and scores["top3"] == 1.0  # 3 classes: top-3 is all
    assert scores["val_images"] == 18 and scores["classes"] == 3
    config = json.loads((pretrain_run / "config.json").read_text())
    assert config["architecture"] == "lale_s1" and config["label_names"] == ["blue", "green", "red"]
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32]
    model = timm.create_model(f"local-dir:{pretrain_run}", pretrained=True)
    saved = safetensors.torch.load_file(str(pretrain_run / "model.safetensors"))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[key])
    encoder = safetensors.torch.load_file(str(pretrain_run / "encoder.safetensors"))
    assert set(encoder) == {k for k in saved if k.startswith("encoder.")}


def test_pretrain_resumes_exactly(folder: Path, pretrain_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, output = invoke(
        "pretrain", "--data", str(folder), "--out", str(out), *SMALL, "--no-progress",
        "--max-steps", "8", "--checkpoint-every", "4",
    )  # fmt: skip
    assert code == 0, output
    code, output = invoke("pretrain", "--resume", str(out), "--no-progress")
    assert code == 0, output
    a = safetensors.torch.load_file(str(pretrain_run / "model.safetensors"))
    b = safetensors.torch.load_file(str(out / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_pretrain_bad_folders_are_one_line(folder: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(folder / "train", bad / "train")
    code, output = invoke("pretrain", "--data", str(bad), "--out", str(tmp_path / "o"), *SMALL)
    assert code == 2 and f"{bad / 'val'}: missing" in output and len(output.splitlines()) == 1
    shutil.copytree(folder / "val", bad / "val")
    shutil.rmtree(bad / "val" / "red")
    code, output = invoke("pretrain", "--data", str(bad), "--out", str(tmp_path / "o"), *SMALL)
    assert code == 2 and "classes differ from train/" in output
    shutil.copytree(folder / "val" / "red", bad / "val" / "red")
    broken = bad / "train" / "green" / "0.png"
    broken.write_bytes(b"not a png")
    code, output = invoke(
        "pretrain", "--data", str(bad), "--out", str(tmp_path / "o"), *SMALL, "--no-progress"
    )
    assert code == 2 and f"{broken}: unreadable image" in output, output
    code, output = invoke(
        "pretrain", "--data", str(folder), "--out", str(tmp_path / "p"), "--batch-size", "7"
    )
    assert code == 2 and "even batch size" in output
    assert not (tmp_path / "p").exists()


# -- --init and the hub ----------------------------------------------------------------------


def test_train_init_from_a_pretrain_run_says_what_it_loaded(
    pretrain_run: Path, seg_data: Path, tmp_path: Path
) -> None:
    code, output = invoke(
        "train", "--data", str(seg_data), "--out", str(tmp_path / "seg"), "--model", "lale_s1",
        "--init", str(pretrain_run), "--epochs", "1", "--batch-size", "4", "--crop-size", "64",
        "--no-progress",
    )  # fmt: skip
    assert code == 0, output
    assert f"--init {pretrain_run}: 126 of 126 encoder tensors loaded from lale_s1" in output
    assert "14 of this model's 140 start fresh" in output


def test_hub_repository_round_trip_offline(
    pretrain_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = tmp_path / "repo"
    code, output = invoke("hub", "push", str(pretrain_run), "org/lale-s1-pt", "--local-dir",
                          str(staged))  # fmt: skip
    assert code == 0, output
    card = (staged / "README.md").read_text()
    assert card.startswith("---\n") and "license: apache-2.0" in card
    assert "library_name: timm" in card and "blue, green, red" in card
    assert "mean\n  [0.485, 0.456, 0.406]" in card and "top1" in card
    cache = tmp_path / "hf"
    fake_hub_cache(staged, cache, "org/lale-s1-pt")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = lale.models.create_model("lale_s1", num_classes=7, pretrained="hf-hub:org/lale-s1-pt")
    encoder = safetensors.torch.load_file(str(pretrain_run / "encoder.safetensors"))
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in encoder.items())
    from lale.models.pretrained import cached_only

    with cached_only():  # timm reads its hub files from HF_HUB_CACHE only
        clf = timm.create_model("hf-hub:org/lale-s1-pt", pretrained=True)
    assert clf.num_classes == 3
    with pytest.raises(lale.errors.UnavailableError, match="HF_HUB_OFFLINE is set"):
        lale.models.create_model("lale_s1", pretrained="hf-hub:org/absent")


def test_hub_push_of_a_training_run_and_its_failures(
    pretrain_run: Path, seg_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "seg"
    code, output = invoke(
        "train", "--data", str(seg_data), "--out", str(run), "--model", "lale_t",
        "--epochs", "1", "--batch-size", "4", "--crop-size", "64", "--no-progress",
    )  # fmt: skip
    assert code == 0, output
    staged = tmp_path / "repo"
    code, output = invoke("hub", "push", str(run), "org/seg", "--local-dir", str(staged),
                          "--license", "cc-by-4.0")  # fmt: skip
    assert code == 0, output
    assert {p.name for p in staged.iterdir()} >= {"README.md", "config.json", "model.safetensors",
                                                  "test_metrics.json"}  # fmt: skip
    card = (staged / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "library_name: lale" in card
    assert "| 0 | Tree | #006400, value 0 |" in card and "Test macro-F1" in card
    code, output = invoke("hub", "push", str(run), "org/seg", "--local-dir", str(staged))
    assert code == 2 and "exists" in output
    code, output = invoke("hub", "push", str(tmp_path), "org/seg", "--local-dir",
                          str(tmp_path / "x"))  # fmt: skip
    assert code != 0 and "not a run directory" in output and not (tmp_path / "x").exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    code, output = invoke("hub", "push", str(run), "org/seg")
    assert code == 3 and "upload of" in output and len(output.strip().splitlines()) == 1
    cache = tmp_path / "hf"
    fake_hub_cache(staged, cache, "org/seg")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    model = lale.models.create_model("lale_t", num_classes=7, pretrained="hf-hub:org/seg")
    saved = safetensors.torch.load_file(str(run / "model.safetensors"))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    code, output = invoke(
        "train", "--data", str(seg_data), "--out", str(tmp_path / "r2"), "--model", "lale_t",
        "--init", "hf-hub:org/missing", "--epochs", "1",
    )  # fmt: skip
    assert code == 3 and "hf-hub:org/missing: not in the Hugging Face cache" in output
    assert not (tmp_path / "r2").exists()


def test_benchmark_pretraining_ablation(pretrain_run: Path, seg_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    base = ["benchmark", "--data", str(seg_data), "--out", str(out), "--models", "lale_s1",
            "--steps", "2", "--seeds", "1", "--batch-size", "4", "--crop-size", "64",
            "--no-progress", "--ablation", "pretraining"]  # fmt: skip
    code, output = invoke(*base)
    assert code == 2 and "--ablation pretraining needs" in output
    code, output = invoke(*base, "--init", str(pretrain_run))
    assert code == 0, output
    results = json.loads((out / "results.json").read_text())
    inits = {r["model"]: r["init"] for r in results["models"]}
    assert inits == {"lale_s1-scratch": None, "lale_s1-PT": str(pretrain_run)}
    assert results["verdicts"] and results["verdicts"][0].startswith(
        "lale_s1-PT vs lale_s1-scratch"
    )
    assert f"lale_s1-PT starts from `{pretrain_run}`" in (out / "report.md").read_text()


def test_pretrain_on_two_ddp_processes(folder: Path, tmp_path: Path) -> None:
    """``lale pretrain --devices 2 --strategy ddp`` on CPU (gloo): Lightning starts rank 1 by
    running the same command again; the ranks split each epoch's batches between them."""
    import os
    import subprocess
    import sys

    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    env.pop("MASTER_PORT", None)
    done = subprocess.run(
        [sys.executable, "-m", "lale.cli", "pretrain", "--data", str(folder), "--out", str(out),
         *SMALL, "--epochs", "1", "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu",
         "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "48 images of 3 classes (18 val), 3 steps per epoch" in done.stdout  # 6 per rank
    scores = json.loads((out / "val_metrics.json").read_text())
    assert scores["val_images"] == 18 and (out / "encoder.safetensors").is_file()
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[1].split(",")[:2] == ["0", "3"]  # epoch 0 ended after 3 steps


def test_pretrain_recipe_pieces(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lale.training.hardware import default_precision
    from lale.training.pretrain import PretrainOptions
    from lale.training.pretrain_task import PretrainRecipe, PretrainTask

    task = PretrainTask("lale_s1", 3, 3, PretrainRecipe(epochs=4, warmup_epochs=1), seed=0)
    task.steps_per_epoch = 10
    config = task.configure_optimizers()
    groups = config["optimizer"].param_groups
    no_decay = [g for g in groups if g["weight_decay"] == 0.0]
    assert no_decay and all(p.ndim <= 1 for g in no_decay for p in g["params"])  # norms, biases
    scheduler = config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    lrs = []
    for step in (0, 5, 10, 25, 40):  # warm-up over the first epoch's 10 updates, then cosine
        scheduler.step_update(num_updates=step)
        lrs.append(groups[0]["lr"])
    assert lrs[0] < lrs[1] < lrs[2] and lrs[2] > lrs[3] > lrs[4]
    options = PretrainOptions(tmp_path, tmp_path / "o")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_precision(options.precision, options.accelerator) == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_precision(options.precision, options.accelerator) == "32-true"

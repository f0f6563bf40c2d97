"""Run directories: atomic safetensors + JSON, rebuilt through the registry, never unpickled."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import IO, Any

import pytest
import safetensors.torch
import torch
from torch import nn

import lale.atomic as atomic
from lale.data.schema import ARAS400K
from lale.models import create_model
from lale.runs import (
    CONFIG_NAME,
    CONFIG_VERSION,
    WEIGHTS_NAME,
    RunConfig,
    RunError,
    load_config,
    load_run,
    load_weights,
    save_run,
    save_weights,
    write_json_atomic,
)

MODEL = "lale_t"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module, RunConfig]:
    torch.manual_seed(0)
    config = RunConfig.from_schema(
        MODEL, ARAS400K, input_size=(256, 256), recipe={"loss": "dice", "lr": 1e-3}, seed=0
    )
    model = create_model(MODEL, config.num_classes, config.in_channels, **config.model_kwargs)
    run_dir = save_run(tmp_path_factory.mktemp("run"), model, config)
    return run_dir, model.eval(), config


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    dst.mkdir(parents=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        (dst / name).write_bytes((run_dir / name).read_bytes())
    return dst


def _edit_config(run_dir: Path, **changes: Any) -> None:
    data = json.loads((run_dir / CONFIG_NAME).read_text())
    data.update(changes)
    (run_dir / CONFIG_NAME).write_text(json.dumps(data))


def test_round_trip_gives_identical_outputs(saved: tuple[Path, nn.Module, RunConfig]) -> None:
    run_dir, model, config = saved
    loaded, loaded_config = load_run(run_dir)
    assert loaded_config == config
    assert not loaded.training
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert sorted(p.name for p in run_dir.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]


def test_config_is_readable_json_with_context(saved: tuple[Path, nn.Module, RunConfig]) -> None:
    run_dir, _, config = saved
    text = (run_dir / CONFIG_NAME).read_text(encoding="utf-8")
    assert text.startswith('{\n  "format": "lale.run",\n  "version": 1,\n  "model": "lale_t"')
    data = json.loads(text)
    assert data["num_classes"] == 7 and data["in_channels"] == 3
    assert data["model_kwargs"]["dims"] == [32, 64, 128, 192]  # resolved, not just the name
    assert data["class_schema"]["classes"][0]["name"] == "Tree"
    assert data["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert data["input_size"] == [256, 256] and data["seed"] == 0
    assert data["versions"]["torch"] == torch.__version__
    assert config.schema() == ARAS400K


def test_weights_are_fp32_safetensors(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).half()
    save_weights(model, tmp_path / "w.safetensors")
    state = safetensors.torch.load_file(tmp_path / "w.safetensors")
    assert state["0.weight"].dtype == torch.float32
    assert state["1.num_batches_tracked"].dtype == torch.int64


def test_tied_weights_round_trip(tmp_path: Path) -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)
            self.b.weight = self.a.weight

    model = Tied()
    save_weights(model, tmp_path / "w.safetensors")
    fresh = load_weights(Tied(), tmp_path / "w.safetensors")
    assert torch.equal(fresh.b.weight, model.a.weight) and fresh.b.weight is fresh.a.weight


def test_truncated_weights_name_the_file(
    saved: tuple[Path, nn.Module, RunConfig], tmp_path: Path
) -> None:
    run_dir = _copy(saved[0], tmp_path)
    weights = run_dir / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(RunError, match=r"model\.safetensors: not a readable safetensors") as err:
        load_run(run_dir)
    assert "\n" not in str(err.value) and err.value.path == weights


@pytest.mark.parametrize(
    ("change", "file", "message"),
    [
        ({"model": "lale_xxl"}, CONFIG_NAME, "unknown model 'lale_xxl'"),
        ({"num_classes": 5}, WEIGHTS_NAME, r"of another shape \(decoder"),
        ({"model_kwargs": {"depths": [1, 1, 1, 1]}}, WEIGHTS_NAME, "unexpected"),
        ({"model_kwargs": {"depths": [3, 2, 4, 1]}}, WEIGHTS_NAME, "missing"),
        ({"version": CONFIG_VERSION + 1}, CONFIG_NAME, "newer than this lale reads"),
        ({"format": "other"}, CONFIG_NAME, "not a lale run config"),
        ({"surprise": 1}, CONFIG_NAME, r"unknown config keys \['surprise'\]"),
        ({"in_channels": "3"}, CONFIG_NAME, "positive integer"),
        ({"model_kwargs": {"mixers": "bogus"}}, CONFIG_NAME, "cannot build model"),
    ],
)
def test_bad_runs_raise_one_line_errors(
    saved: tuple[Path, nn.Module, RunConfig],
    tmp_path: Path,
    change: dict[str, Any],
    file: str,
    message: str,
) -> None:
    run_dir = _copy(saved[0], tmp_path)
    _edit_config(run_dir, **change)
    with pytest.raises(RunError, match=message) as err:
        load_run(run_dir)
    assert err.value.path == run_dir / file
    assert str(err.value).startswith(str(run_dir / file)) and "\n" not in str(err.value)


def test_missing_files_and_invalid_json(
    saved: tuple[Path, nn.Module, RunConfig], tmp_path: Path
) -> None:
    with pytest.raises(RunError, match="run directory not found"):
        load_run(tmp_path / "nowhere")
    run_dir = _copy(saved[0], tmp_path)
    (run_dir / CONFIG_NAME).write_text('{"format": "lale.run", ')
    with pytest.raises(RunError, match=r"config\.json: invalid JSON"):
        load_run(run_dir)
    (run_dir / CONFIG_NAME).write_text("[1, 2]")
    with pytest.raises(RunError, match="expected a JSON object"):
        load_run(run_dir)
    (run_dir / CONFIG_NAME).unlink()
    with pytest.raises(RunError, match=r"config\.json: config file not found"):
        load_run(run_dir)
    run_dir = _copy(saved[0], tmp_path / "second")
    (run_dir / WEIGHTS_NAME).unlink()
    with pytest.raises(RunError, match=r"model\.safetensors: weights file not found"):
        load_run(run_dir)


def _crash_halfway(fh: IO[bytes], data: bytes) -> None:
    fh.write(data[: len(data) // 2])
    raise OSError("disk full")


def test_crash_mid_write_keeps_the_previous_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = nn.Linear(3, 2)
    save_weights(model, tmp_path / WEIGHTS_NAME)
    write_json_atomic(tmp_path / CONFIG_NAME, {"step": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(atomic, "_write_chunks", _crash_halfway)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        save_weights(model, tmp_path / WEIGHTS_NAME)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomic(tmp_path / CONFIG_NAME, {"step": 2})
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # old files intact, no temporary files left behind


def test_nothing_is_ever_unpickled(
    saved: tuple[Path, nn.Module, RunConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = _copy(saved[0], tmp_path)
    torch.save(saved[1].state_dict(), run_dir / WEIGHTS_NAME)  # a pickle under the right name
    payload = pickle.dumps({"model": MODEL}).hex()
    _edit_config(run_dir, versions={"pickle": payload})

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    config = load_config(run_dir / CONFIG_NAME)
    assert config.versions["pickle"] == payload  # stays an inert string
    with pytest.raises(RunError, match=r"model\.safetensors: not a readable safetensors"):
        load_run(run_dir)


def test_config_validation_and_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mean has 2 values for 3 channels"):
        RunConfig(model=MODEL, num_classes=7, in_channels=3, mean=[0.5, 0.5])
    with pytest.raises(ValueError, match="input_size"):
        RunConfig(model=MODEL, num_classes=7, in_channels=3, input_size=[256])
    config = RunConfig(model=MODEL, num_classes=7, in_channels=3, bands=(1, 2, 3))  # type: ignore[arg-type]
    assert config.bands == [1, 2, 3]  # JSON shapes, so it equals its reloaded copy
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="Out of range float values"):
        write_json_atomic(tmp_path / "x.json", {"x": float("nan")})
    assert not list(tmp_path.iterdir())


def test_recipe_is_typed_and_stored_flat() -> None:
    from lale.recipe import Recipe, RunRecipe

    recipe = RunRecipe.of(Recipe(epochs=3, class_weights=(1.0, 2.0)), data="/d", strict=True)
    config = RunConfig(model=MODEL, num_classes=7, in_channels=3, recipe=recipe)
    stored = config.to_dict()["recipe"]
    assert stored["epochs"] == 3 and stored["class_weights"] == [1.0, 2.0]
    assert (stored["data"], stored["strict"], stored["checkpoint_every"]) == ("/d", True, 50)
    assert "augment" in stored and "optimisation" not in stored
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.recipe.optimisation == Recipe(epochs=3, class_weights=(1.0, 2.0))
    # A recipe written by another version: missing keys take defaults, unknown ones are ignored.
    old = RunConfig(model=MODEL, num_classes=7, in_channels=3, recipe={"lr": 0.5, "gone": 1})
    assert old.recipe == RunRecipe(lr=0.5)
    with pytest.raises(ValueError, match="recipe must be"):
        RunConfig(model=MODEL, num_classes=7, in_channels=3, recipe=[1])  # type: ignore[arg-type]

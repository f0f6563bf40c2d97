"""lale federate: sites, a simulated federation end to end, resume after a kill, bad inputs,
a site dying mid-round, and a real SuperLink with two SuperNodes on localhost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lale.data.synthetic import write_dataset
from lale.errors import DataError, UsageError
from lale.federated.sites import split_into_sites

BIN = Path(sys.executable).parent
LALE = [sys.executable, "-m", "lale.cli"]
TINY = [
    "--rounds",
    "2",
    "--local-steps",
    "2",
    "--batch-size",
    "4",
    "--crop-size",
    "64",
    "--model",
    "lale_s1",
    "--no-progress",
]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HF_HUB_OFFLINE": "1",
    }


def lale(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LALE, *args], capture_output=True, text=True, timeout=timeout, env=_env()
    )


@pytest.fixture(scope="module")
def regional(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Patches cut from 128² scenes (4 per scene), named TILE_rROW_cCOL."""
    root = tmp_path_factory.mktemp("regional")
    write_dataset(root, train=24, val=12, test=12, size=64, seed=3, scene_size=128)
    return root


def test_region_split_keeps_each_scene_at_one_site(regional: Path, tmp_path: Path) -> None:
    sites = split_into_sites(regional, "region", 3, tmp_path / "sites", block=2, say=lambda m: None)
    assert [s.name for s in sites] == ["site-1", "site-2", "site-3"]
    owner: dict[str, str] = {}
    for site in sites:
        for split in ("train", "val", "test"):
            names = sorted(p.name for p in (site.root / split / "images").iterdir())
            assert names, (site.name, split)
            for name in names:
                scene = name.split("_r")[0]
                assert owner.setdefault(scene, site.name) == site.name  # a scene never split
    # random is the IID control: every site gets a share of every split
    random = split_into_sites(regional, "random", 3, tmp_path / "r", say=lambda m: None)
    assert all(len(list((s.root / "val" / "images").iterdir())) == 4 for s in random)


def test_region_split_needs_places(tmp_path: Path) -> None:
    write_dataset(tmp_path / "plain", train=6, val=3, test=3, size=32)
    with pytest.raises(DataError, match="says nowhere where it lies"):
        split_into_sites(tmp_path / "plain", "region", 3, tmp_path / "s", say=lambda m: None)
    write_dataset(tmp_path / "few", train=4, val=4, test=4, size=32, scene_size=64)
    with pytest.raises(UsageError, match="3 tiles for 5 sites"):
        split_into_sites(tmp_path / "few", "tile", 5, tmp_path / "t", say=lambda m: None)


def test_federation_end_to_end(regional: Path, tmp_path: Path) -> None:
    out = tmp_path / "fed"
    got = lale(
        "federate",
        "--data",
        str(regional),
        "--split-by",
        "region",
        "--num-sites",
        "3",
        "--block",
        "2",
        "--out",
        str(out),
        "--compare-centralized",
        *TINY,
    )
    assert got.returncode == 0, got.stderr[-3000:]
    record = json.loads((out / "federation.json").read_text())
    assert [r["round"] for r in record["per_round"]] == [1, 2]
    model_bytes = record["model_mb"] * 1e6
    for r in record["per_round"]:
        assert set(r["sites"]) == {"site-1", "site-2", "site-3"} and not r["left_out"]
        assert 0 <= r["global_val_macro_f1"] <= 1
        for site in r["sites"].values():
            assert site["steps"] == 2 and site["examples"] == 8
            assert site["bytes_down"] == site["bytes_up"] >= model_bytes
            assert 0 <= site["val_macro_f1"] <= 1
    assert record["centralized"]["steps"] == 2 * 3 * 2
    assert (out / "federation.png").stat().st_size > 10_000
    assert "pooled val macro-F1" in got.stderr and "MB per round per site" in got.stdout
    # an ordinary run directory: lale evaluate scores the union's test split exactly as the
    # federation pooled its sites' test pixels
    scored = lale("evaluate", "--run", str(out), "--data", str(regional))
    assert scored.returncode == 0, scored.stderr
    union = json.loads((out / "eval_test.json").read_text())["macro"]["f1"]
    assert union == pytest.approx(record["test_macro_f1"], abs=1e-9)
    assert json.loads((out / "test_metrics.json").read_text())["macro"]["f1"] == union


def test_killed_federation_resumes_at_its_last_round(regional: Path, tmp_path: Path) -> None:
    out = tmp_path / "fed"
    args = [
        *LALE,
        "federate",
        "--data",
        str(regional),
        "--split-by",
        "random",
        "--num-sites",
        "2",
        "--out",
        str(out),
        *TINY,
        "--rounds",
        "3",
    ]
    proc = subprocess.Popen(
        args,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    state = out / "federation" / "state.json"
    try:
        _wait_for_round(state, proc, 1)
        assert proc.poll() is None, "the federation ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the command, Ray and its workers
        proc.wait()
    first = json.loads(state.read_text())
    assert 1 <= first["round"] < 3
    again = lale("federate", "--resume", str(out), "--no-progress")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming after round {first['round']} of 3" in again.stderr
    record = json.loads((out / "federation.json").read_text())
    assert [r["round"] for r in record["per_round"]] == [1, 2, 3]
    assert record["per_round"][: first["round"]] == first["records"]


def test_fedadam_sends_the_model_in_its_own_dtype(regional: Path, tmp_path: Path) -> None:
    out = tmp_path / "adam"
    got = lale(
        "federate",
        "--data",
        str(regional),
        "--split-by",
        "random",
        "--num-sites",
        "2",
        "--out",
        str(out),
        *TINY,
        "--strategy",
        "fedadam",
        "--server-lr",
        "0.001",
    )
    assert got.returncode == 0, got.stderr[-3000:]
    record = json.loads((out / "federation.json").read_text())
    assert record["strategy"] == "fedadam" and record["server_lr"] == 0.001
    down = [s["bytes_down"] for r in record["per_round"] for s in r["sites"].values()]
    assert len(set(down)) == 1 and down[0] < record["model_mb"] * 1e6 * 1.01  # fp32 both rounds


def test_bad_sites_are_one_line_errors(regional: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_dataset(a, train=4, val=2, test=2, size=32)
    write_dataset(b, train=4, val=2, test=2, size=32)
    cases = []
    missing = lale(
        "federate",
        "--sites",
        str(a),
        str(tmp_path / "nowhere"),
        "--out",
        str(tmp_path / "o1"),
        *TINY,
    )
    cases.append((missing, f"{tmp_path / 'nowhere'}: site not found"))
    (b / "schema.json").write_text(
        json.dumps(
            {
                "classes": [
                    {"name": "land", "color": [0, 0, 0]},
                    {"name": "water", "color": [0, 0, 255]},
                ]
            }
        )
    )
    schema = lale("federate", "--sites", str(a), str(b), "--out", str(tmp_path / "o2"), *TINY)
    cases.append((schema, "site b: its class schema differs from site a's"))
    (b / "schema.json").unlink()
    image = next((b / "train" / "images").iterdir())
    image.write_bytes(b"not a png")
    unreadable = lale("federate", "--sites", str(a), str(b), "--out", str(tmp_path / "o3"), *TINY)
    cases.append((unreadable, "site b: "))
    for got, expected in cases:
        assert got.returncode == 2, got.stderr
        lines = got.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), got.stderr
        assert expected in lines[0], lines[0]
    assert str(image.name) in unreadable.stderr
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2" / "config.json").exists()


def _wait_for_round(state: Path, proc: subprocess.Popen[bytes], least: int) -> None:
    end = time.monotonic() + 240
    while time.monotonic() < end and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["round"] >= least:
            return
        time.sleep(0.1)
    raise AssertionError(f"round {least} never finished (exit {proc.poll()})")


def test_a_site_dying_mid_federation_is_left_out_and_said(regional: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for site in (a, b):
        shutil.copytree(regional, site)
    out = tmp_path / "o"
    args = [*LALE, "federate", "--sites", str(a), str(b), "--out", str(out), *TINY, "--rounds", "4"]
    with (tmp_path / "err.log").open("wb") as err:
        proc = subprocess.Popen(
            args, env=_env(), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
        try:
            _wait_for_round(out / "federation" / "state.json", proc, 1)
            shutil.rmtree(b / "train")  # site b loses its training data after round 1
            assert proc.wait(timeout=240) == 0, (tmp_path / "err.log").read_text()[-3000:]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    record = json.loads((out / "federation.json").read_text())
    rounds = record["per_round"]
    assert not rounds[0]["left_out"] and rounds[0]["sites"]["b"]["steps"] == 2
    assert "b" in rounds[-1]["left_out"] and "steps" not in rounds[-1]["sites"]["b"]
    assert all(r["sites"]["a"]["steps"] == 2 for r in rounds)
    assert "aggregated without b" in (tmp_path / "err.log").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_real_superlink_and_two_supernodes(
    regional: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    sites = split_into_sites(regional, "region", 2, tmp_path / "sites", block=2, say=lambda m: None)
    home = tmp_path / "flwr-home"
    home.mkdir()
    env = {**_env(), "FLWR_HOME": str(home)}
    link = _free_port()
    app, out = tmp_path / "app", tmp_path / "run"
    made = lale("federate", "--write-app", str(app), "--num-sites", "2", "--out", str(out), *TINY)
    assert made.returncode == 0, made.stderr
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *command: str) -> None:
        log = (logs / f"{name}.log").open("wb")
        processes.append(
            subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
        )

    start(
        "superlink",
        str(BIN / "flower-superlink"),
        "--insecure",
        "--disable-runtime-dependency-installation",
        "--port",
        str(link),
    )
    for site in sites:
        start(
            site.name,
            str(BIN / "flower-supernode"),
            "--insecure",
            "--superlink",
            f"127.0.0.1:{link}",
            "--port",
            str(_free_port()),
            "--node-config",
            f"data-dir='{site.root}' site='{site.name}'",
        )
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "local-test"\n\n[superlink.local-test]\n'
        f'address = "127.0.0.1:{link}"\ninsecure = true\n'
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", link)) == 0:
                break
        time.sleep(0.3)
    run = subprocess.run(
        [str(BIN / "flwr"), "run", str(app), "local-test", "--stream"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    record_file = out / "federation.json"
    assert record_file.exists(), run.stdout[-3000:] + "".join(
        p.read_text(errors="replace")[-2000:] for p in logs.iterdir()
    )
    record = json.loads(record_file.read_text())
    assert [r["round"] for r in record["per_round"]] == [1, 2]
    assert set(record["sites"]) == {"site-1", "site-2"}
    assert (out / "model.safetensors").exists() and (out / "test_metrics.json").exists()

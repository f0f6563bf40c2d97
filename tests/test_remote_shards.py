"""Shard sets and rasters in S3: a real S3-compatible server (moto's), no mocks.

``lale train --data s3://…`` must train to the same weights as the local shard set it was
uploaded from, keep whole chunks only when they fit ``--cache-limit`` (byte ranges otherwise),
and a missing set is one line naming the URL. ``lale predict`` reads an ``s3://`` COG by windows
through GDAL and maps it as the local file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasters import write_geotiff
from typer.testing import CliRunner

from lale import cli
from lale.data.synthetic import write_dataset

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

runner = CliRunner()
TINY: dict[str, Any] = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}
BUCKET = "lale-data"

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local S3 server with one bucket; the environment points boto3 and GDAL at it."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        # GDAL's /vsis3/ reads the endpoint from its own variables
        "AWS_S3_ENDPOINT": f"{host}:{port}",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
        client.create_bucket(Bucket=BUCKET)
        yield client
    server.stop()


def _upload(client: Any, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder)}")


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def _train(data: str, out: Path, *extra: str) -> Any:
    args = ["train", f"--data={data}", f"--out={out}", "--epochs=2", "--batch-size=4"]
    args += ["--crop-size=48", "--no-progress", *extra]
    args += [f"--model-arg={k}={json.dumps(v)}" for k, v in TINY.items()]
    return runner.invoke(cli.app, args)


@pytest.fixture(scope="module")
def shards(s3: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, train=8, val=2, test=2, size=64, seed=0)
    out = tmp_path_factory.mktemp("packed") / "shards"
    _ok(runner.invoke(cli.app, ["pack", str(root), f"--out={out}", "--shard-size=20KB"]))
    assert len(list((out / "train").glob("chunk-*.bin"))) > 1
    _upload(s3, out, "sets/one")
    return out


def _chunks(cache: Path) -> list[Path]:
    return sorted(cache.rglob("chunk-*.bin"))


def test_remote_shards_train_as_local_and_respect_the_cache_limit(
    shards: Path, tmp_path: Path
) -> None:
    local, cached, ranged = tmp_path / "local", tmp_path / "cached", tmp_path / "ranged"
    _ok(_train(str(shards), local))
    result = _ok(_train(f"s3://{BUCKET}/sets/one", cached, f"--cache-dir={tmp_path / 'c1'}"))
    assert "chunks cached" in result.stdout
    total = sum(p.stat().st_size for p in shards.rglob("chunk-*.bin"))
    kept = _chunks(tmp_path / "c1")
    assert len(kept) == len(list(shards.rglob("chunk-*.bin")))  # every chunk came once, kept
    assert sum(p.stat().st_size for p in kept) == total
    from lale.data.shards.remote import read_remote, streaming_dataset

    (mirror,) = [p for p in (tmp_path / "c1").iterdir() if p.is_dir()]
    warm = streaming_dataset(mirror / "train", read_remote(mirror))
    assert warm.input_dir.url is None  # a warm cache is read as a local set
    # a limit below the set's size: samples by byte ranges, no chunk on disk
    limit = f"--cache-limit={total // 2}"
    cache = f"--cache-dir={tmp_path / 'c2'}"
    result = _ok(_train(f"s3://{BUCKET}/sets/one/", ranged, cache, limit))
    assert "byte ranges" in result.stdout
    assert not _chunks(tmp_path / "c2")
    for run in (cached, ranged):
        for name in ("test_metrics.json", "model.safetensors"):
            assert (run / name).read_bytes() == (local / name).read_bytes(), (run, name)
    scores = []
    for data in (str(shards), f"s3://{BUCKET}/sets/one"):
        out = tmp_path / f"eval{len(scores)}.json"
        args = ["evaluate", f"--run={local}", f"--data={data}", "--split=val", f"--json={out}"]
        _ok(runner.invoke(cli.app, [*args, f"--cache-dir={tmp_path / 'c3'}"]))
        scores.append({k: v for k, v in json.loads(out.read_text()).items() if k != "data"})
    assert scores[0] == scores[1]


def test_a_set_repacked_in_the_bucket_is_not_read_from_stale_chunks(
    s3: Any, shards: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    write_dataset(other / "data", train=8, val=2, test=2, size=64, seed=5)
    packed = other / "shards"
    _ok(
        runner.invoke(
            cli.app, ["pack", str(other / "data"), f"--out={packed}", "--shard-size=20KB"]
        )
    )
    cache = f"--cache-dir={tmp_path / 'c'}"
    _upload(s3, shards, "sets/moving")
    _ok(_train(f"s3://{BUCKET}/sets/moving", tmp_path / "first", cache))
    assert _chunks(tmp_path / "c")
    _upload(s3, packed, "sets/moving")  # the same names, other samples
    _ok(_train(f"s3://{BUCKET}/sets/moving", tmp_path / "second", cache))
    _ok(_train(str(packed), tmp_path / "local"))
    for name in ("test_metrics.json", "model.safetensors"):
        assert (tmp_path / "second" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_remote_shards_resume_from_their_mirror(shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cache = f"--cache-dir={tmp_path / 'c'}"
    _ok(_train(f"s3://{BUCKET}/sets/one", run, cache, "--max-steps=2", "--checkpoint-every=1"))
    full = tmp_path / "full"
    _ok(_train(f"s3://{BUCKET}/sets/one", full, cache))
    _ok(runner.invoke(cli.app, ["train", f"--resume={run}", "--max-steps=-1", "--no-progress"]))
    assert (run / "model.safetensors").read_bytes() == (full / "model.safetensors").read_bytes()


def test_a_missing_remote_shard_set_is_one_line(s3: Any, tmp_path: Path) -> None:
    url = f"s3://{BUCKET}/sets/none"
    result = _train(url, tmp_path / "run", f"--cache-dir={tmp_path / 'c'}")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{url}/lale-shards.json" in lines[0] and "not found" in lines[0]
    assert not (tmp_path / "run").exists()
    bad = _train(url, tmp_path / "run", "--cache-limit=lots")
    assert bad.exit_code == 2 and "--cache-limit" in bad.stderr


def test_predict_reads_an_s3_raster_as_the_local_file(
    s3: Any, tmp_path: Path, run_dir: Path
) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, (3, 512, 512), dtype=np.uint8)
    cog = write_geotiff(tmp_path / "scene.tif", data, driver="COG", blocksize=256)
    s3.upload_file(str(cog), BUCKET, "scenes/scene.tif")
    outs = {}
    for name, source in (("local", str(cog)), ("remote", f"s3://{BUCKET}/scenes/scene.tif")):
        out = tmp_path / name
        args = ["predict", source, f"--run={run_dir}", f"--out={out}", "--no-progress"]
        _ok(runner.invoke(cli.app, args))
        outs[name] = out
    with (
        rasterio.open(outs["local"] / "scene_classes.tif") as a,
        rasterio.open(outs["remote"] / "scene_classes.tif") as b,
    ):
        assert a.transform == b.transform
        np.testing.assert_array_equal(a.read(), b.read())


def test_a_chunk_missing_or_cut_in_the_bucket_is_one_line_before_training(
    s3: Any, shards: Path, tmp_path: Path
) -> None:
    _upload(s3, shards, "sets/holed")
    s3.delete_object(Bucket=BUCKET, Key="sets/holed/train/chunk-0-1.bin")
    _upload(s3, shards, "sets/cut")
    s3.put_object(Bucket=BUCKET, Key="sets/cut/val/chunk-0-0.bin", Body=b"cut")
    for name, chunk, words in (
        ("holed", "train/chunk-0-1.bin", "missing chunk"),
        ("cut", "val/chunk-0-0.bin", "chunk is 3 bytes"),
    ):
        url = f"s3://{BUCKET}/sets/{name}"
        result = _train(url, tmp_path / name, f"--cache-dir={tmp_path / 'c'}")
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{url}/{chunk}: {words}" in lines[0], result.stderr
        assert not (tmp_path / name).exists()


@pytest.mark.slow
@pytest.mark.parametrize("limit", [20 << 30, 1000])
def test_killed_ddp_run_from_s3_resumes_without_repeating_or_skipping(
    s3: Any, tmp_path: Path, limit: int
) -> None:
    """tests/test_shards.py's kill-and-resume check, two gloo ranks reading from the bucket."""
    import torch
    from test_shards import _digests, _phase

    from lale.data.shards.remote import open_remote_shards, read_remote

    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    data, shards, out, log = (tmp_path / n for n in ("data", "shards", "run", "log"))
    write_dataset(data, train=16, val=2, test=2, size=64, seed=0)
    _ok(runner.invoke(cli.app, ["pack", str(data), f"--out={shards}", "--shard-size=20KB"]))
    _upload(s3, shards, f"sets/ddp-{limit}")
    mirror = open_remote_shards(f"s3://{BUCKET}/sets/ddp-{limit}", tmp_path / "cache", limit)
    remote = read_remote(mirror)
    assert remote is not None and remote.cached == (limit > 1000)
    assert _phase("kill", mirror, out, log) == -9
    _phase("resume", mirror, out, log)
    assert (out / "test_metrics.json").is_file()
    trained = [
        d
        for phase in ("kill", "resume")
        for rank in (0, 1)
        for s in map(json.loads, (log / f"{phase}-rank{rank}.jsonl").read_text().splitlines())
        for d in s["images"]
    ]
    assert sorted(trained) == _digests(data)  # every image once: none repeated, none skipped
    assert bool(_chunks(tmp_path / "cache")) == remote.cached

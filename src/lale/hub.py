"""Publish a run on the Hugging Face Hub with a model card: what ``lale hub push`` runs.

A training run becomes ``README.md`` (the card), lale's ``config.json`` and
``model.safetensors`` (plus ``test_metrics.json`` and the figures); a pretraining run becomes
the card, timm's ``config.json``, ``model.safetensors``, ``encoder.safetensors``,
``pretrain.json`` and ``val_metrics.json`` — so ``timm.create_model("hf-hub:ORG/NAME",
pretrained=True)`` reads it too. The card's metadata (license, library, tags, pipeline) is
written through huggingface_hub's ``ModelCardData``; its text states the classes and their
colours, the bands, how inputs are scaled and normalised, the scores and the recipe.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from lale.errors import RunError, UnavailableError, UsageError, cause_text
from lale.run_layout import CONFIG, FIGURES, TEST_METRICS, WEIGHTS

__all__ = ["model_card", "push", "stage"]

_PRETRAIN_FILES = ("config.json", "model.safetensors", "encoder.safetensors", "pretrain.json")
_PRETRAIN_EXTRA = ("val_metrics.json", "history.png")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunError(path, f"unreadable ({err})") from None
    if not isinstance(value, dict):
        raise RunError(path, "not a JSON object")
    return value


def _fmt(value: Any) -> str:
    return f"{100 * float(value):.2f} %" if isinstance(value, int | float) else "—"


def _colour(cls: dict[str, Any]) -> str:
    """``#rrggbb`` and/or ``value N`` of a schema class."""
    parts = []
    rgb = cls.get("color")
    if isinstance(rgb, list) and len(rgb) == 3:
        parts.append("#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb)))
    if cls.get("value") is not None:
        parts.append(f"value {cls['value']}")
    return ", ".join(parts) or "—"


def _segmentation_card(run: Path, repo_id: str) -> tuple[str, list[str], str]:
    config = _read_json(run / CONFIG)
    schema = config.get("class_schema", {})
    classes = schema.get("classes", [])
    image = schema.get("image", {})
    rows = ["| index | class | mask colour | test F1 | test IoU |", "|---|---|---|---|---|"]
    metrics = _read_json(run / TEST_METRICS) if (run / TEST_METRICS).is_file() else {}
    per_class = metrics.get("per_class", {})
    for i, cls in enumerate(classes):
        name = cls.get("name", str(i))
        colour = _colour(cls)
        scores = per_class.get(name, {})
        rows.append(
            f"| {i} | {name} | {colour} | {_fmt(scores.get('f1'))} | {_fmt(scores.get('iou'))} |"
        )
    macro = metrics.get("macro", {})
    recipe = config.get("recipe", {})
    averaged = ", ".join(metrics.get("classes_averaged", []))
    bands = config.get("bands") or "all, in file order"
    names = config.get("band_names") or "—"
    body = f"""# {repo_id.split("/")[-1]}

A {config["model"]} land-cover segmentation model trained with
[lale](https://pypi.org/project/lale/): {config["num_classes"]} classes from
{config["in_channels"]}-band images.

## Use

```python
import lale
model = lale.create_model("{config["model"]}", num_classes={config["num_classes"]},
                          in_channels={config["in_channels"]}, pretrained="hf-hub:{repo_id}")
```

or fine-tune it:
`lale train --data DATA --out RUN --model {config["model"]} --init hf-hub:{repo_id}`.

## Inputs

- Bands: {bands} (names: {names}); {config["in_channels"]} channels.
- Scaling: samples `(x + {image.get("offset", 0)}) / {image.get("scale", 255)}`, 8-bit rule
  `{config.get("scaling", "truecolor")}`; then normalised per channel with mean
  {config.get("mean")} and std {config.get("std")}.
- Training patches: {config.get("input_size")} pixels.

## Classes and test scores

{chr(10).join(rows)}

Test macro-F1 {_fmt(macro.get("f1"))}, macro-IoU {_fmt(macro.get("iou"))}, pixel accuracy
{_fmt(metrics.get("accuracy"))} (classes averaged: {averaged}).

## Training

Seed {config.get("seed")}; recipe:

```json
{json.dumps(recipe, indent=2, sort_keys=True)}
```

Library versions: {json.dumps(config.get("versions", {}), sort_keys=True)}.
"""
    files = [CONFIG, WEIGHTS, TEST_METRICS]
    files += [name for name in FIGURES.values() if (run / name).is_file()]
    return body, files, "image-segmentation"


def _pretrain_card(run: Path, repo_id: str) -> tuple[str, list[str], str]:
    record = _read_json(run / "pretrain.json")
    timm_cfg = _read_json(run / "config.json")
    pcfg = timm_cfg.get("pretrained_cfg", {})
    scores = _read_json(run / "val_metrics.json") if (run / "val_metrics.json").is_file() else {}
    topk = {k: v for k, v in scores.items() if k.startswith("top")}
    score_text = ", ".join(f"{k} {_fmt(v)}" for k, v in topk.items()) or "not recorded"
    classes = record.get("classes", [])
    shown = ", ".join(classes[:20]) + (f" … ({len(classes)} in all)" if len(classes) > 20 else "")
    body = f"""# {repo_id.split("/")[-1]}

A {record["model"]} encoder pretrained as a {len(classes)}-class image classifier with
[lale](https://pypi.org/project/lale/) (`lale pretrain`, timm's recipe on Lightning).

## Use

```python
import lale.models  # registers the LALE models with timm too
import timm

hub = "hf-hub:{repo_id}"
seg = lale.models.create_model("{record["model"]}", num_classes=7, pretrained=hub)  # encoder
clf = timm.create_model(hub, pretrained=True)  # the classifier
```

or `lale train --data DATA --out RUN --model {record["model"]} --init hf-hub:{repo_id}`.

## Inputs

- {record.get("in_chans", 3)} channels, images scaled to 0..1 and normalised with mean
  {pcfg.get("mean")} and std {pcfg.get("std")}; crops of {pcfg.get("input_size")}.

## Scores

Validation ({scores.get("val_images", "?")} images): {score_text}, best epoch {scores.get("epoch")}.

Classes: {shown}.

## Recipe

```json
{
        json.dumps(
            {
                "recipe": record.get("recipe"),
                "augment": record.get("augment"),
                "seed": record.get("seed"),
            },
            indent=2,
            sort_keys=True,
        )
    }
```
"""
    files = list(_PRETRAIN_FILES) + [n for n in _PRETRAIN_EXTRA if (run / n).is_file()]
    return body, files, "image-classification"


def model_card(run: Path, repo_id: str, license_id: str = "apache-2.0") -> tuple[str, list[str]]:
    """The card text (metadata header + body) of ``run`` and the run files the repository holds.

    Raises:
        RunError: ``run`` is neither a finished training run nor a pretraining run.
    """
    from huggingface_hub import ModelCard, ModelCardData

    if (run / "pretrain.json").is_file():
        body, files, pipeline = _pretrain_card(run, repo_id)
        library, tags = "timm", ["lale", "image-classification", "remote-sensing"]
    elif (run / CONFIG).is_file():
        body, files, pipeline = _segmentation_card(run, repo_id)
        library, tags = "lale", ["lale", "semantic-segmentation", "remote-sensing", "land-cover"]
    else:
        raise RunError(run, "not a run directory (no config.json or pretrain.json)")
    missing = [f for f in files if not (run / f).is_file()]
    if missing:
        raise RunError(run / missing[0], "missing: the run did not finish, nothing to publish")
    data = ModelCardData(license=license_id, library_name=library, tags=tags, pipeline_tag=pipeline)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    return str(card), files


def stage(run: Path, repo_id: str, folder: Path, license_id: str = "apache-2.0") -> Path:
    """Write the repository's files into the new ``folder`` (atomically: all or nothing).

    Raises:
        UsageError: ``folder`` exists, or ``repo_id`` is not ``ORG/NAME``.
        RunError: As :func:`model_card`.
    """
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise UsageError(f"{repo_id!r}: a Hub repository is ORG/NAME")
    if folder.exists():
        raise UsageError(f"{folder}: exists; give a new folder")
    card, files = model_card(run, repo_id, license_id)
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        (partial / "README.md").write_text(card, encoding="utf-8")
        for name in files:
            shutil.copy2(run / name, partial / name)
        os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder


def push(run: Path, repo_id: str, license_id: str = "apache-2.0", private: bool = False) -> str:
    """Stage ``run`` and upload it to ``repo_id`` (created if missing); returns its URL.

    Raises:
        UnavailableError: The upload failed (offline, no token, no rights): one line.
    """
    import tempfile

    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory(prefix="lale-hub-") as tmp:
        folder = stage(run, repo_id, Path(tmp) / "repo", license_id)
        api = HfApi()
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            api.upload_folder(
                repo_id=repo_id, folder_path=folder, commit_message=f"lale hub push {run.name}"
            )
        except Exception as err:  # network, auth, rights: the same kind of answer
            raise UnavailableError(
                f"upload of {run} to {repo_id} failed ({cause_text(err)[:200]}); log in with "
                "'hf auth login' or set HF_TOKEN, or write the files with --local-dir and "
                "upload them yourself"
            ) from None
    return f"https://huggingface.co/{repo_id}"

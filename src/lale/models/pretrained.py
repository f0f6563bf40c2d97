"""ImageNet weights for the baselines' encoders, from the Hugging Face cache and never a hang.

SMP encoders keep their ImageNet weights in ``smp-hub/<encoder>.imagenet`` repositories at a
pinned revision (``config.json`` + ``model.safetensors``); timm encoders in ``timm/<model>.<tag>``
(``model.safetensors``). :func:`ensure_cached` finds every file in the local cache first; a file
that is not there is fetched with a short timeout (not at all under ``HF_HUB_OFFLINE=1``), and
if that fails the error is one line saying how to place it. :func:`cached_only` then lets SMP and
timm build the encoder from those cached files alone, so building never touches the network.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from lale.errors import UnavailableError, UsageError, cause_text

__all__ = [
    "HubFile",
    "cached_only",
    "ensure_cached",
    "hub_cache_dir",
    "hub_offline",
    "pretrained_files",
]

CONNECT_TIMEOUT_S = 5.0
"""Seconds a fetch of a file that is not cached may wait for the Hub to answer."""
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face model repository.

    Attributes:
        repo_id: ``owner/name``.
        filename: Path inside the repository.
        revision: Commit hash or branch (``None``: ``main``).
    """

    repo_id: str
    filename: str
    revision: str | None = None


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache the environment names now (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if cache := os.environ.get("HF_HUB_CACHE"):
        return Path(cache).expanduser()
    if home := os.environ.get("HF_HOME"):
        return Path(home).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_offline() -> bool:
    """Whether the Hugging Face hub must not be asked (``HF_HUB_OFFLINE``, read now)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "")
    return flag.strip().lower() in _TRUE or bool(constants.HF_HUB_OFFLINE)


def pretrained_files(encoder_name: str) -> list[HubFile]:
    """The hub files the ImageNet weights of ``encoder_name`` (SMP name or ``tu-`` timm) need.

    Raises:
        UsageError: The encoder has no published ImageNet weights.
    """
    if encoder_name.startswith("tu-"):
        import timm

        model = encoder_name[3:]
        cfg = timm.get_pretrained_cfg(model)
        if cfg is None or not cfg.hf_hub_id:
            raise UsageError(f"timm publishes no pretrained weights for {model!r} (--pretrained)")
        repo_id, _, revision = cfg.hf_hub_id.partition("@")
        filename = cfg.hf_hub_filename or "model.safetensors"
        return [HubFile(repo_id, filename, revision or None)]
    from segmentation_models_pytorch.encoders import encoders

    if encoder_name not in encoders:
        return []  # not an SMP encoder: building it gives the error
    settings = encoders[encoder_name]["pretrained_settings"].get("imagenet")
    if settings is None:
        raise UsageError(f"SMP has no ImageNet weights for encoder {encoder_name!r} (--pretrained)")
    repo_id, revision = settings["repo_id"], settings["revision"]
    return [HubFile(repo_id, name, revision) for name in ("config.json", "model.safetensors")]


def _missing_error(encoder_name: str, file: HubFile, why: str) -> UnavailableError:
    rev = file.revision or "main"
    return UnavailableError(
        f"ImageNet weights of encoder {encoder_name!r} are not cached and cannot be fetched "
        f"({why}): {file.repo_id} revision {rev} file {file.filename}. On a connected machine "
        f"run 'hf download {file.repo_id} --revision {rev}' and copy its Hugging "
        f"Face cache folder here ({hub_cache_dir()}), or point HF_HOME at a cache that holds it"
    )


def _probe(file: HubFile) -> None:
    """Raise unless the hub answers a request for ``file`` within :data:`CONNECT_TIMEOUT_S`."""
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    from huggingface_hub import hf_hub_url

    url = hf_hub_url(file.repo_id, file.filename, revision=file.revision)
    with suppress(HTTPError):  # it answered (401, 404, ...): the download below reports what
        urlopen(Request(url, method="HEAD"), timeout=CONNECT_TIMEOUT_S).close()


def ensure_cached(encoder_name: str) -> None:
    """Make sure every file of ``encoder_name``'s ImageNet weights is in the local cache.

    Raises:
        UsageError: The encoder has no published ImageNet weights.
        UnavailableError: A file is not cached and cannot be fetched within seconds (or the
            hub is offline); the one-line message names the repository, revision and file
            and says how to place it.
    """
    from huggingface_hub import hf_hub_download

    cache = hub_cache_dir()
    for file in pretrained_files(encoder_name):
        fetch = functools.partial(
            hf_hub_download, file.repo_id, file.filename, revision=file.revision, cache_dir=cache
        )
        try:
            fetch(local_files_only=True)
            continue
        except (OSError, ValueError):
            pass  # not cached
        if hub_offline():
            raise _missing_error(encoder_name, file, "HF_HUB_OFFLINE is set")
        try:
            _probe(file)  # one quick request: the hub's own client retries for half a minute
            fetch(etag_timeout=CONNECT_TIMEOUT_S)
        except Exception as err:  # any failure to fetch is the same answer to the user
            raise _missing_error(encoder_name, file, cause_text(err)[:160]) from err


@contextmanager
def cached_only() -> Iterator[None]:
    """Within this block SMP and timm read hub files from the local cache only."""
    import segmentation_models_pytorch.encoders as smp_encoders
    import timm.models._hub as timm_hub
    from huggingface_hub import hf_hub_download

    local: Any = functools.partial(
        hf_hub_download, local_files_only=True, cache_dir=hub_cache_dir()
    )

    def timm_local(*args: Any, cache_dir: Any = None, **kwargs: Any) -> Any:
        return local(*args, **kwargs)  # timm passes cache_dir=None: keep ours

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(smp_encoders, "hf_hub_download", local))
        stack.enter_context(mock.patch.object(timm_hub, "hf_hub_download", timm_local))
        yield

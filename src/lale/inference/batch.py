"""Predicting many inputs: each on its own, a bad one reported and the others completed."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lale.errors import DataError

if TYPE_CHECKING:
    from lale.inference.inputs import Source
    from lale.inference.predict import SceneResult
    from lale.progress import ProgressFn

__all__ = ["BatchReport", "Failure", "output_names", "predict_files"]


@dataclass(frozen=True)
class Failure:
    """An input that could not be predicted, with a one-line reason naming it."""

    input: Source
    message: str


@dataclass
class BatchReport:
    """Outcome of :func:`predict_files`, in input order."""

    results: list[SceneResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def output_names(paths: Sequence[Source]) -> list[str]:
    """Base output name of each input: its stem, with ``-2``, ``-3`` … where a stem repeats."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        seen[p.stem] = seen.get(p.stem, 0) + 1
        names.append(p.stem if seen[p.stem] == 1 else f"{p.stem}-{seen[p.stem]}")
    return names


def predict_files(
    paths: Sequence[Source],
    run_predict: Callable[[Source, str, ProgressFn | None], SceneResult],
    progress: Callable[[Source, int, int], None] | None = None,
    on_done: Callable[[SceneResult | Failure], None] | None = None,
) -> BatchReport:
    """Predict every input with ``run_predict(path, name, progress)``; failures are collected.

    A :class:`~lale.errors.DataError` or an I/O error fails that input only; anything else
    propagates.

    Args:
        paths: Input files.
        run_predict: Predicts one input under an output base name.
        progress: Called with ``(input, windows done, windows in total)``.
        on_done: Called with each result or failure as soon as it is known.
    """
    from rasterio.errors import RasterioError

    report = BatchReport()
    for path, name in zip(paths, output_names(paths), strict=True):
        bar = None if progress is None else functools.partial(progress, path)
        outcome: SceneResult | Failure
        try:
            outcome = run_predict(path, name, bar)
            report.results.append(outcome)
        except DataError as err:
            outcome = Failure(path, str(err))
            report.failures.append(outcome)
        except (OSError, RasterioError) as err:  # e.g. the outputs could not be written
            outcome = Failure(path, f"{path}: {type(err).__name__}: {err}")
            report.failures.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return report

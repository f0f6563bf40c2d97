"""What keeps a training honest: data checks before it, a prompt stop on signals, a report after.

:func:`check_data` builds every split (file headers and completeness checked) and fails when
the class schema does not label the masks; :func:`stopping` turns SIGINT/SIGTERM and failed
checkpoint writes into one-line errors that say what was kept and how to resume;
:func:`report_unknown` prints each split's unknown mask colours once and records them in the
run directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities.exceptions import SIGTERMException

from lale.atomic import write_json_atomic
from lale.data.dataset import alpha_message, bad_pairs_message
from lale.data.io.layout import skipped_message
from lale.data.survey.audit import audit_labels, unknown_record, unknown_summary
from lale.errors import EXIT_INTERRUPTED, LaleError, WorkFailedError
from lale.run_layout import CHECKPOINT, UNKNOWN_COLOURS
from lale.training.callbacks import CheckpointWriteError, SignalStop, StopOnSignal
from lale.training.datamodule import LandCoverDataModule

__all__ = ["SPLITS", "TrainingError", "TrainingStopped", "check_data", "report_unknown", "stopping"]

Say = Callable[[str], None]
SPLITS = ("train", "val", "test")


class TrainingError(WorkFailedError):
    """Training cannot start or could not finish; the message says why and what to do."""


class TrainingStopped(LaleError):
    """Training was stopped by SIGINT or SIGTERM; the message says what was kept (exit 130)."""

    exit_code = EXIT_INTERRUPTED


def check_data(data: LandCoverDataModule, root: Path, max_unknown: float, say: Say) -> None:
    """Build every split (headers checked) and check that the schema labels its masks."""
    for name in SPLITS:
        split = data.split(name)
        if split.skipped:
            say(f"warning: {skipped_message(split.skipped)}")
        if split.bad_pairs:
            say(f"warning: {bad_pairs_message(name, split.bad_pairs)}")
        if split.alpha_dropped:
            say(f"warning: {alpha_message(name, split.alpha_dropped)}")
        where = root / name / "masks"
        audit_labels(split.pairs, data.schema, str(where), max_unknown)


@contextmanager
def stopping(stop: StopOnSignal, out: Path, resume: str = "lale train --resume") -> Iterator[None]:
    """Signals during the block stop it with :class:`TrainingStopped`; failed saves explained.

    ``resume`` is the command the messages tell the user to continue with.
    """
    stop.install()
    try:
        yield
    except (SignalStop, SIGTERMException, KeyboardInterrupt):
        kept = out / CHECKPOINT
        what = f"kept {kept}" if kept.is_file() else "nothing to resume from was saved yet"
        name = stop.received or "an interrupt"
        raise TrainingStopped(f"stopped by {name}; {what}; continue with: {resume} {out}") from None
    except CheckpointWriteError as err:
        hint = f"; continue with: {resume} {out}" if err.path.exists() else ""
        raise TrainingError(f"{err}{hint}") from None
    finally:
        stop.restore()


def report_unknown(data: LandCoverDataModule, out: Path, say: Say) -> None:
    """Print each split's unknown mask pixels once and record them in the run directory."""
    record: dict[str, Any] = {}
    for name in data.splits:
        report = data.split(name).unknown_pixels()
        if report.counts:
            say(unknown_summary(name, report))
            record[name] = unknown_record(report)
    if record:
        write_json_atomic(out / UNKNOWN_COLOURS, record)
        say(f"unknown mask colours written to {out / UNKNOWN_COLOURS}")

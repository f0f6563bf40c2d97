"""The ``lale`` command line: one typer app whose commands stay thin and call the library.

One module per command group (``models``: models, profile; ``data``: synth, prepare, pack;
``schema``: schema init; ``training``: train, evaluate; ``pretrain``: pretrain, hub push;
``benchmark``; ``federate``; ``predict``; ``export``; ``demo``; ``maps``: areas, change); what
they share is in ``_common``. Command modules import torch and the other heavy libraries inside
the command functions, so ``lale --help`` and ``lale --version`` start without them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from lale import __version__
from lale.cli import (
    benchmark,
    data,
    demo,
    export,
    federate,
    maps,
    models,
    predict,
    pretrain,
    schema,
    training,
)

__all__ = ["app", "main"]


def _keep_help_plain() -> None:
    """Keep ``[default: …]`` in help texts as written.

    typer 0.17 to 0.20 escape that bracket for rich markup even when rich markup is off
    (``rich_markup_mode=None``, as here), so plain help showed ``\\[default: …]``. Those are
    the typer releases Flower (the ``federated`` extra) accepts.
    """
    try:
        from typer import rich_utils
    except ImportError:
        return
    if hasattr(rich_utils, "escape_before_html_export"):
        rich_utils.escape_before_html_export = str.strip  # type: ignore[assignment]


_keep_help_plain()

app = typer.Typer(
    name="lale",
    help="LALE: lightweight land-cover segmentation — models, efficiency profiling and more.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default …]" must not be read as markup
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lale {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """LALE: lightweight land-cover segmentation — models, efficiency profiling and more."""


_GROUPS = (
    models,
    demo,
    data,
    schema,
    training,
    pretrain,
    benchmark,
    federate,
    export,
    predict,
    maps,
)
for _group in _GROUPS:
    _group.register(app)


def main() -> None:
    """Run the ``lale`` command (the console-script entry point)."""
    app()

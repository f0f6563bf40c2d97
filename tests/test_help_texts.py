"""Every command's ``--help`` shows every word of its help texts, as written in the source.

Help texts state defaults in brackets (``[3]``, ``[the preset's]``); rendered as rich markup those
brackets were read as tags and the words inside vanished. Each command and group is rendered here
and every help string, whitespace aside, must appear in what the user sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from lale.cli import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():  # a group's commands
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _words(text: str) -> str:
    """Whitespace collapsed; a word the terminal wrapped after its hyphen joined again."""
    return " ".join(re.sub(r"-\n\s*", "-", text).split())


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"train", "benchmark", "predict", "export", "schema init"} <= names


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "lale")
def test_help_shows_every_word_of_the_source(path: tuple[str, ...]) -> None:
    command = dict(COMMANDS)[path]
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    shown = _words(result.output)
    texts = [p.help for p in command.params if p.param_type_name == "option" and p.help]
    if command.help:
        texts.append(command.help.split("\f")[0])
    for text in texts:
        for paragraph in text.split("\n\n"):
            assert _words(paragraph) in shown, f"lale {' '.join(path)} --help lost: {paragraph!r}"


def _states_default(option: Any, context: Any) -> bool:
    if option.required or (option.is_flag and not option.secondary_opts and not option.default):
        return True  # required, or a plain on/off switch that is off unless given
    record = option.get_help_record(context)  # the help line as --help prints it
    text = "" if record is None else record[1]
    return (
        "[default:" in text
        or re.search(r"\[[^\]]+\]", option.help or "") is not None
        or ("(default:" in (option.help or ""))
    )


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "lale")
def test_every_option_states_its_default(path: tuple[str, ...]) -> None:
    command = dict(COMMANDS)[path]
    context = command.context_class(command, info_name=" ".join(path) or "lale")
    silent = [
        max(p.opts, key=len)
        for p in command.params
        if p.param_type_name == "option" and p.name != "help" and not _states_default(p, context)
    ]
    assert not silent, f"lale {' '.join(path)}: no default stated for {silent}"

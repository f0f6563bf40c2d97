"""``lale schema init``: write a class schema from the colours or values found in the masks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lale.cli._common import add_command, stdout
from lale.errors import UsageError

SCHEMA_EXAMPLE_JSON = """{
  "name": "my_classes",
  "classes": [
    {"name": "forest", "color": [0, 100, 0]},
    {"name": "water", "color": "#0000ff"},
    {"name": "urban", "color": [139, 69, 19]}
  ],
  "ignore_colors": [[0, 0, 0]],
  "image": {"band_count": 3, "dtype": "uint8", "scale": 255}
}"""
SCHEMA_EXAMPLE_YAML = """name: my_index_classes
classes:
  - {name: forest, value: 10}
  - {name: water, value: 80}
ignore_values: [0]
image: {band_count: 4, bands: [3, 2, 1], dtype: uint16, scale: 10000,
        mean: [0.1, 0.1, 0.1], std: [0.05, 0.05, 0.05]}"""


def init_command(
    data: Annotated[Path, typer.Argument(help="Dataset root ({split}/masks/) or a mask folder.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Schema file to write, .json or .yaml [DATA/schema.json]."),
    ] = None,
    min_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Colours/values under this share of all pixels are noise."
        ),
    ] = 0.001,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a class schema from the colours or values found in the masks.

    Classes are named class_0, class_1, … by decreasing pixel count; rename them in the file.
    Training picks up DATA/schema.json by itself.
    """
    from lale.atomic import write_bytes_atomic
    from lale.data.survey.schema_init import draft_schema
    from lale.run_layout import DATASET_SCHEMA

    target = out or data / DATASET_SCHEMA
    if target.exists() and not force:
        raise UsageError(f"{target} exists; give --force to overwrite it or another --out")
    yaml_out = target.suffix.lower() in (".yaml", ".yml")
    draft = draft_schema(data, min_share)
    record = draft.schema.to_dict()
    if yaml_out:
        try:
            import yaml
        except ImportError:
            from lale.errors import UnavailableError

            raise UnavailableError("writing YAML needs PyYAML: pip install pyyaml") from None
        text = yaml.safe_dump(record, sort_keys=False)
    else:
        import json

        text = json.dumps(record, indent=1) + "\n"
    try:
        write_bytes_atomic(target, text.encode("utf-8"))
    except OSError as err:
        raise UsageError(f"--out {target}: cannot write ({err.strerror or err})") from None
    console = stdout()
    schema = draft.schema
    kind = "colours" if schema.has_colors else "values"
    codes = schema.colors if schema.has_colors else schema.values
    console.print(
        f"read {draft.files} masks ({draft.total} px): {schema.num_classes} classes by {kind}"
    )
    for name, code, pixels in zip(schema.names, codes, draft.pixels, strict=True):
        console.print(f"  {name}: {escape(str(code))} {pixels / draft.total:.2%}")
    if draft.dropped:
        shown = ", ".join(f"{k} {n} px" for k, n in list(draft.dropped.items())[:5])
        console.print(
            f"left out {len(draft.dropped)} {kind} under {min_share:.2%} of the pixels as noise "
            f"(they stay unknown): {escape(shown)}"
        )
    console.print(f"wrote {escape(str(target))}; rename the classes there")


def register(app: typer.Typer) -> None:
    """Add ``lale schema init`` to ``app``."""
    group = typer.Typer(
        help="Class schemas: write one from a dataset's masks.", rich_markup_mode=None
    )
    add_command(group, "init", init_command)
    app.add_typer(group, name="schema")

"""Small helpers for asset outputs: atomic Parquet writes and Markdown tables for the UI."""

from __future__ import annotations

import base64
from pathlib import Path

import polars as pl


def write_parquet(frame: pl.DataFrame, path: Path) -> Path:
    """Write via a temporary file and rename, so a killed run never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.write_parquet(tmp)
    tmp.replace(path)
    return path


def markdown_table(frame: pl.DataFrame, max_rows: int = 40, max_chars: int = 120) -> str:
    """A Markdown table of the first rows, long cells shortened, for `MetadataValue.md`."""

    def cell(v: object) -> str:
        s = str(v).replace("|", "\\|").replace("\n", " ")
        return s if len(s) <= max_chars else s[: max_chars - 1] + "…"

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in r) + " |" for r in frame.head(max_rows).iter_rows()]
    return "\n".join([head, rule, *rows])


def dict_table(data: dict, key: str = "item", value: str = "count") -> str:
    return markdown_table(pl.DataFrame({key: [str(k) for k in data], value: [str(v) for v in data.values()]}))


def png_markdown(path: Path, alt: str) -> str:
    """A PNG inlined as Markdown, so the Dagster UI shows the plot in the asset's metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

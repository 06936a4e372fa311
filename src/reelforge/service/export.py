"""Exports for people and for training or evaluation scripts: rows of dicts as JSON or CSV."""
from __future__ import annotations

import csv
import io
import json


def to_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=1) + "\n"


def to_csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    """CSV with a header; nested values (a dict or list) are written as JSON in their cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
                         for k, v in row.items()})
    return out.getvalue()


def render(rows: list[dict], columns: tuple[str, ...], fmt: str) -> str:
    """`fmt` "csv" or "json"."""
    return to_csv(rows, columns) if fmt == "csv" else to_json(rows)

"""Run the docs' reader recipes (pandas, polars, DuckDB, Hugging Face datasets) on a checkout.

Builds a log folder the way gitjsonl lays it out (a legacy single file, segment
files named by number, and a README that is not a record), then reads
it with each library's recipe from ``docs/recipes.md``, twice: with records whose
fields keep one type, and with one record whose ``rating`` is a string where every
other record has a number. Prints what each reader returns or raises, which is
what the page quotes. The libraries are not gitjsonl's dependencies::

    python -m venv /tmp/recipes && /tmp/recipes/bin/pip install pandas polars duckdb datasets
    /tmp/recipes/bin/python docs/recipes_check.py
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

SEGMENT = re.compile(r"^[0-9]{8,12}\.jsonl$")


def log_files(checkout: Path, path: str = "data/interactions") -> list[str]:
    """The files that hold the log, in order: the legacy file, then the segments by name."""
    folder, legacy = checkout / path, checkout / f"{path}.jsonl"
    segments = sorted(p for p in folder.iterdir() if p.is_file() and SEGMENT.match(p.name))
    # After `gitjsonl migrate` the legacy file's records are in the segments too.
    migrated = (folder / "_gitjsonl.json").is_file()
    first = [legacy] if legacy.is_file() and not migrated else []
    return [str(p) for p in first + segments]


def make_checkout(root: Path, *, odd_record: bool) -> Path:
    records = [
        {"id": i, "type": "interaction", "session_id": f"s{i % 3}", "rating": i % 5}
        for i in range(1, 301)
    ]
    if odd_record:
        records[250]["rating"] = "5 stars"  # one record of another type, late in the log
    folder = root / "data" / "interactions"
    folder.mkdir(parents=True)
    (root / "data" / "interactions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records[:100])
    )
    for n, chunk in enumerate((records[100:200], records[200:]), start=1):
        (folder / f"{n:08d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chunk))
    (folder / "README.md").write_text("# not a record\n")
    return root


def with_pandas(files: list[str]) -> str:
    import pandas as pd

    frame = pd.concat((pd.read_json(f, lines=True) for f in files), ignore_index=True)
    return f"{len(frame)} rows, rating dtype {frame['rating'].dtype}"


def with_polars(files: list[str]) -> str:
    import polars as pl

    frame = pl.read_ndjson(files)
    return f"{frame.height} rows, rating {frame.schema['rating']}"


def with_polars_all_rows(files: list[str]) -> str:
    import polars as pl

    frame = pl.read_ndjson(files, infer_schema_length=None)
    return f"{frame.height} rows, rating {frame.schema['rating']}"


def with_duckdb(files: list[str]) -> str:
    import duckdb

    rows = duckdb.sql(
        f"SELECT count(*), typeof(any_value(rating)) FROM read_json({files!r}, "
        "format = 'newline_delimited')"
    ).fetchall()
    return f"{rows[0][0]} rows, rating {rows[0][1]}"


def with_duckdb_all_rows(files: list[str]) -> str:
    import duckdb

    rows = duckdb.sql(
        f"SELECT count(*), typeof(any_value(rating)) FROM read_json({files!r}, "
        "format = 'newline_delimited', sample_size = -1)"
    ).fetchall()
    return f"{rows[0][0]} rows, rating {rows[0][1]}"


def with_polars_string(files: list[str]) -> str:
    import polars as pl

    frame = pl.read_ndjson(files, schema_overrides={"rating": pl.String})
    return f"{frame.height} rows, rating {frame.schema['rating']}"


def with_datasets_features(files: list[str]) -> str:
    import datasets

    datasets.disable_progress_bars()
    features = datasets.Features(
        {
            "id": datasets.Value("int64"),
            "type": datasets.Value("string"),
            "session_id": datasets.Value("string"),
            "rating": datasets.Value("string"),
        }
    )
    data = datasets.load_dataset("json", data_files=files, split="train", features=features)
    return f"{data.num_rows} rows, rating {data.features['rating']}"


def with_datasets(files: list[str]) -> str:
    import datasets

    datasets.disable_progress_bars()
    data = datasets.load_dataset("json", data_files=files, split="train")
    return f"{data.num_rows} rows, rating {data.features['rating']}"


READERS: dict[str, Callable[[list[str]], str]] = {
    "pandas": with_pandas,
    "polars": with_polars,
    "polars (infer_schema_length=None)": with_polars_all_rows,
    'polars (schema_overrides={"rating": pl.String})': with_polars_string,
    "duckdb": with_duckdb,
    "duckdb (sample_size = -1)": with_duckdb_all_rows,
    "datasets": with_datasets,
    "datasets (features=, rating a string)": with_datasets_features,
}


def run() -> dict[str, dict[str, str]]:
    results: dict[str, dict[str, str]] = {}
    for odd in (False, True):
        case = "one record of another type" if odd else "one type per field"
        with tempfile.TemporaryDirectory(prefix="gitjsonl-recipes-") as tmp:
            files = log_files(make_checkout(Path(tmp), odd_record=odd))
            for name, read in READERS.items():
                try:
                    outcome = read(files)
                except ImportError as exc:
                    outcome = f"not installed ({exc.name})"
                except Exception as exc:  # the point is to report what each library raises
                    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                    cause = exc.__cause__ or exc.__context__
                    if cause is not None:  # datasets wraps pyarrow's reason
                        last += " <- " + traceback.format_exception_only(type(cause), cause)[-1]
                    outcome = f"raises {last.strip()[:300]}"
                results.setdefault(name, {})[case] = outcome
    return results


def main() -> int:
    results = run()
    for name, cases in results.items():
        for case, outcome in cases.items():
            print(f"{name} | {case} | {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Read the files people bring (CSV, TSV, XLSX, JSON, JSONL, TXT) into a `Table` of rows.

Everything is read as text: a CSV cell `007` stays `"007"`, empty cells become `""` (as `prepare_data` does
with `fillna("")`), and non-Latin text passes through untouched.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from tuneforge.data.io import DataFileError, iter_lines, read_head, sniff_binary
from tuneforge.data.table import Table

EXTENSIONS = {
    ".csv": "CSV",
    ".tsv": "TSV",
    ".xlsx": "Excel",
    ".json": "JSON",
    ".jsonl": "JSONL",
    ".txt": "TXT",
}


def kind_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise DataFileError(
            f"{path}: unsupported file type `{ext or '(none)'}`. Use one of {', '.join(EXTENSIONS)}."
        )
    return ext


def read_table(path: str | Path, sheet: str | None = None) -> tuple[Table, list[tuple[int, str]]]:
    """The rows of any supported file and the (line, reason) of JSONL lines that could not be parsed."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file.")
    ext = kind_of(path)
    if ext != ".xlsx":
        why = sniff_binary(read_head(path))
        if why:
            raise DataFileError(f"{path}: not a text file: {why}.")
    if ext == ".jsonl":
        return read_jsonl(path)
    if ext == ".json":
        return read_json(path), []
    if ext in (".csv", ".tsv"):
        return read_csv(path, "\t" if ext == ".tsv" else ","), []
    if ext == ".xlsx":
        return read_xlsx(path, sheet), []
    return read_txt(path), []


def read_jsonl(path: Path, whole_json: bool = True) -> tuple[Table, list[tuple[int, str]]]:
    rows, lines, bad = [], [], []
    for raw in iter_lines(path):
        if raw.text is None:
            bad.append((raw.number, "over-long line" if raw.too_long else "not UTF-8"))
            continue
        if not raw.text.strip():
            continue
        if (
            whole_json
            and not rows
            and not bad
            and (raw.text.lstrip().startswith("[") or raw.text.strip() == "{")
        ):
            return read_json(path, jsonl_fallback=False), []  # a JSON array or pretty-printed JSON
        try:
            row = json.loads(raw.text)
        except json.JSONDecodeError as exc:
            bad.append((raw.number, f"invalid JSON ({exc.msg}, column {exc.colno})"))
            continue
        if not isinstance(row, dict):
            bad.append((raw.number, "not a JSON object"))
            continue
        rows.append(row)
        lines.append(raw.number)
    return Table(rows, lines), bad


def read_json(path: Path, jsonl_fallback: bool = True) -> Table:
    try:
        data = json.loads(path.read_text("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: byte {exc.start} is not UTF-8; re-save the file as UTF-8.") from None
    except json.JSONDecodeError as exc:
        if not jsonl_fallback:
            raise DataFileError(
                f"{path}, line {exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno})."
            ) from None
        # Many `.json` files are really JSONL.
        table, bad = read_jsonl(path, whole_json=False)
        if bad:
            line, why = bad[0]
            raise DataFileError(f"{path}, line {line}: {why}; the file is neither JSON nor JSONL.") from None
        return table
    return Table(*_records(data, path))


def _records(data, path: Path) -> tuple[list[dict], list[int]]:
    """The list of objects inside parsed JSON: an array, or the one list-valued key of an object."""
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if len(lists) == 1:
            data = lists[0]
        elif "messages" in data or "prompt" in data or "conversations" in data:
            data = [data]
    if not isinstance(data, list):
        raise DataFileError(f"{path}: expected a JSON array of examples, got {type(data).__name__}.")
    bad = [i for i, item in enumerate(data, 1) if not isinstance(item, dict)]
    if bad:
        raise DataFileError(f"{path}: item {bad[0]} of the array is not an object; each example must be one.")
    return list(data), list(range(1, len(data) + 1))


def _cell(value) -> str:
    return "" if value is None else str(value)


def read_csv(path: Path, delimiter: str) -> Table:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(encoding="utf-8-sig", newline="") as fh:
        try:
            reader = csv.DictReader(fh, delimiter=delimiter)
            rows = [{_cell(k): _cell(v) for k, v in row.items() if k is not None} for row in reader]
        except UnicodeDecodeError as exc:
            raise DataFileError(
                f"{path}: byte {exc.start} is not UTF-8; re-save the file as UTF-8."
            ) from None
        except csv.Error as exc:
            raise DataFileError(f"{path}, line {reader.line_num}: {exc}.") from None
    # Line numbers as a spreadsheet shows them: row 1 is the header.
    return Table(rows, list(range(2, len(rows) + 2)))


def read_xlsx(path: Path, sheet: str | None = None) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise DataFileError(f"{path}: cannot open the workbook ({exc}).") from None
    if sheet and sheet not in book.sheetnames:
        raise DataFileError(f"{path}: no sheet `{sheet}`; sheets: {', '.join(book.sheetnames)}.")
    ws = book[sheet] if sheet else book.worksheets[0]
    it = ws.iter_rows(values_only=True)
    header = [_cell(h) for h in next(it, ())]
    rows, lines = [], []
    for n, values in enumerate(it, 2):
        if values is None or all(v is None for v in values):
            continue
        rows.append({h: _cell(v) for h, v in zip(header, values, strict=False) if h})
        lines.append(n)
    book.close()
    return Table(rows, lines)


def read_txt(path: Path) -> Table:
    """prepare_data's rule: every non-empty line is a completion with an empty prompt."""
    rows, lines = [], []
    for raw in iter_lines(path):
        if raw.text is None:
            raise DataFileError(f"{path}, line {raw.number}: not UTF-8 or over-long; re-save as UTF-8.")
        if raw.text.strip():
            rows.append({"prompt": "", "completion": raw.text})
            lines.append(raw.number)
    return Table(rows, lines)

"""Show an EvalResult: a rich table in the terminal and a self-contained HTML report (no external assets)."""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

from rich.console import Console
from rich.markup import escape as escape_markup
from rich.table import Column, Table

from tuneforge.data.language import name_of
from tuneforge.evaluation.run import EvalResult

# (attribute, label, higher is better, format)
METRICS = [
    ("loss", "loss", False, "{:.3f}"),
    ("perplexity", "perplexity", False, "{:.2f}"),
    ("token_accuracy", "token accuracy", True, "{:.1%}"),
    ("exact_match", "exact match", True, "{:.1%}"),
    ("rouge_l", "ROUGE-L", True, "{:.3f}"),
]


def _labels(result: EvalResult) -> list[str]:
    """Column names: the model id, with its server when the same id is compared across servers."""
    ids = [m.model for m in result.models]
    return [m.model if ids.count(m.model) == 1 else f"{m.model}@{m.base_url}" for m in result.models]


def _winner(result: EvalResult, value, higher: bool) -> int | None:
    """Index of the best model by `value(model)` (None with one model, or none that has the metric)."""
    have = [i for i, m in enumerate(result.models) if value(m) is not None]
    if len(result.models) < 2 or not have:
        return None
    pick = max if higher else min
    return pick(have, key=lambda i: value(result.models[i]))


def _cell(model, attr: str, fmt: str) -> str:
    value = getattr(model, attr)
    return "n/a" if value is None else fmt.format(value)


def _errors(n: int) -> str:
    return f"{n} error{'s' if n != 1 else ''}"


def _grader_cell(model, name: str) -> str:
    score = model.graders[name]
    return f"{score.mean:.3f}" + (f" ({_errors(score.errors)})" if score.errors else "")


def summary_rows(result: EvalResult) -> list[tuple[str, list[str], int | None]]:
    """The metrics table: per row its label (↑ higher is better, ↓ lower), a cell per model, and the best
    model's index. The built-in metrics, then one row per --grader, named by the grader."""
    table = []
    for attr, label, higher, fmt in METRICS:
        best = _winner(result, lambda m, a=attr: getattr(m, a), higher)
        table.append((label + (" ↑" if higher else " ↓"), [_cell(m, attr, fmt) for m in result.models], best))
    table += language_rows(result)
    for name in result.graders:
        best = _winner(result, lambda m, n=name: m.graders[n].mean, True)
        table.append((f"{name} ↑", [_grader_cell(m, name) for m in result.models], best))
    return table


def language_rows(result: EvalResult) -> list[tuple[str, list[str], int | None]]:
    """Exact match and ROUGE-L per language, when the rows are in more than one: a model that learned the
    English half well and invents facts in Chinese shows it here, not hidden in the mean."""
    codes = result.language_codes()
    if len(codes) < 2:
        return []
    rows = []
    for attr, label, fmt in (("exact_match", "exact match", "{:.1%}"), ("rouge_l", "ROUGE-L", "{:.3f}")):
        for code in codes:
            n = result.languages.count(code)
            best = _winner(result, lambda m, c=code, a=attr: m.by_language[c][a], True)
            rows.append((f"{label}, {name_of(code)} ({n}) ↑",
                         [fmt.format(m.by_language[code][attr]) for m in result.models], best))
    return rows


def language_changes(result: EvalResult, before, after) -> str:
    """' (English 0.130 -> 0.450, Chinese 0.170 -> 0.260)': ROUGE-L per language from one model to
    another, or '' when the rows are in one language."""
    codes = result.language_codes()
    if len(codes) < 2:
        return ""
    parts = [f"{name_of(c)} {before.by_language[c]['rouge_l']:.3f} -> {after.by_language[c]['rouge_l']:.3f}"
             for c in codes]
    return f" ({', '.join(parts)})"


def unavailable_notes(result: EvalResult) -> list[str]:
    """One line per model whose server could not score the reference answers, and per grader that could
    not score some rows."""
    notes = []
    n = len(result.references)
    for label, m in zip(_labels(result), result.models, strict=True):
        if m.unavailable:
            notes.append(f"{label}: loss, perplexity and token accuracy unavailable ({m.unavailable})")
        for name in result.graders:
            score = m.graders[name]
            if score.errors:
                notes.append(f"{label}: grader {name}: {_errors(score.errors)} in {n} rows, each scored 0; "
                             f"first: {score.first_error}")
    return notes


def summary_table(result: EvalResult) -> Table:
    # The metric names stay on one line ("exact match, English (25) ↑"): the model columns wrap instead.
    table = Table(Column("metric", no_wrap=True), *_labels(result),
                  title=f"Evaluation on {result.file} ({len(result.references)} examples)")
    for label, cells, best in summary_rows(result):
        table.add_row(escape_markup(label), *[(f"[bold green]{escape_markup(c)}[/]" if i == best
                                               else escape_markup(c)) for i, c in enumerate(cells)])
    return table


def answers_table(result: EvalResult, limit: int = 8, width: int = 70) -> Table:
    table = Table("question", "reference", *_labels(result), show_lines=True,
                  title="Answers side by side (ROUGE-L in brackets)")

    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    for i in range(min(limit, len(result.references))):
        cells = [f"{cut(m.answers[i])} [dim]({m.per_example[i]['rouge_l']:.2f})[/]" for m in result.models]
        table.add_row(cut(result.questions[i]), cut(result.references[i]), *cells)
    return table


def print_result(result: EvalResult, console: Console | None = None, examples: int = 8) -> None:
    console = console or Console()
    if examples:
        console.print(answers_table(result, examples))
    console.print(summary_table(result))
    for note in unavailable_notes(result):
        console.print(f"[yellow]{escape_markup(note)}[/]", soft_wrap=True)
    if len(result.models) > 1:
        best = result.best()
        if sum(m.rouge_l == best.rouge_l for m in result.models) > 1:
            console.print(f"No model is ahead on ROUGE-L ({best.rouge_l:.3f}).")
        else:
            console.print(f"Best ROUGE-L: [bold]{best.model}[/] ({best.rouge_l:.3f}).")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.4em .6em;vertical-align:top;text-align:left}th{background:#f3f3f3}
td.best{background:#e3f6e3;font-weight:bold}.score{color:#666;font-size:.85em}.em{color:#0a7d0a}
td.ans{max-width:28em;white-space:pre-wrap}.note{color:#a15c00}
"""


def _grader_marks(model, names: list[str], i: int) -> str:
    """The graders' rewards for row `i`, each with why it scored 0 where the grader failed on it."""
    marks = []
    for name in names:
        score = model.graders[name]
        error = score.row_errors[i] if score.row_errors else None
        text = f"<br>{escape(name)} {score.rewards[i]:.3f}"
        marks.append(f"{text} <span class=note>(error: {escape(error)})</span>" if error else text)
    return "".join(marks)


def render_html(result: EvalResult) -> str:
    models = result.models
    head = "".join(f"<th>{escape(label)}</th>" for label in _labels(result))
    summary = []
    for label, values, best in summary_rows(result):
        cells = "".join(f"<td class=\"{'best' if i == best else ''}\">{escape(c)}</td>"
                        for i, c in enumerate(values))
        summary.append(f"<tr><td>{escape(label)}</td>{cells}</tr>")
    rows = []
    multilingual = len(result.language_codes()) > 1
    for i, (question, reference) in enumerate(zip(result.questions, result.references, strict=True)):
        cells = []
        for m in models:
            s = m.per_example[i]
            mark = " <span class=em>✓ exact</span>" if s["exact_match"] else ""
            cells.append(f"<td class=ans>{escape(m.answers[i])}<div class=score>ROUGE-L "
                         f"{s['rouge_l']:.3f}{mark}{_grader_marks(m, result.graders, i)}</div></td>")
        language = f"<div class=score>{escape(name_of(result.languages[i]))}</div>" if multilingual else ""
        rows.append(f"<tr><td>{i + 1}</td><td class=ans>{escape(question)}{language}</td>"
                    f"<td class=ans>{escape(reference)}</td>{''.join(cells)}</tr>")
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    notes = "".join(f"<p class=note>{escape(n)}</p>" for n in unavailable_notes(result))
    servers = ", ".join(sorted({m.base_url for m in models}))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>tuneforge evaluation: {escape(', '.join(m.model for m in models))}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>tuneforge evaluation</h1><p>{len(result.references)} examples from "
        f"<code>{escape(result.file)}</code>, {when}, served by {escape(servers)}. Loss, perplexity and "
        "token accuracy are measured on the reference answers through /v1/completions (echo, logprobs), "
        "after a plain <code>role: content</code> transcript of a chat row's prompt, as the API does "
        "not expose the model's chat template; exact match and ROUGE-L score the greedy answers from "
        "/v1/chat/completions (character-level for Chinese)." + _language_text(result) + _grader_text(result)
        + "</p>"
        f"<h2>Summary</h2><table><tr><th>metric</th>{head}</tr>{''.join(summary)}</table>{notes}"
        f"<h2>Answers</h2><table><tr><th>#</th><th>question</th><th>reference</th>{head}</tr>"
        f"{''.join(rows)}</table></body></html>"
    )


def _language_text(result: EvalResult) -> str:
    if len(result.language_codes()) < 2:
        return ""
    return (" Exact match and ROUGE-L are also given per language, a row's language being its reference "
            "answer's script (Han: Chinese, Latin: English).")


def _grader_text(result: EvalResult) -> str:
    if not result.graders:
        return ""
    return (f" Grader metrics ({escape(', '.join(result.graders))}): each grader's mean reward over all "
            "rows, a row it could not score counting 0.")


def write_html(result: EvalResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result), encoding="utf-8")
    return path

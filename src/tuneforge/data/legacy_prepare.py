"""OpenAI's legacy `fine_tunes.prepare_data` checks for prompt/completion data, rule for rule.

Same order, thresholds, separators, stop sequences and wording as `openai/lib/_validators.py` (reference:
../shared/reference/openai-api.md §11.3), with one deliberate difference: rows are named by their line
in the file instead of a 0-based dataframe index. Each validator returns a Remediation; `prepare.py`
applies them.
"""

from __future__ import annotations

from collections import Counter

from tuneforge.data.table import Remediation, Table, common_xfix, line_list

DOCS = "https://platform.openai.com/docs/guides/fine-tuning/preparing-your-dataset"
PROMPT_SEPARATORS = [" ->", "\n\n###\n\n", "\n\n===\n\n", "\n\n---\n\n", "\n\n===>\n\n", "\n\n--->\n\n"]
FALLBACK_SEPARATOR = "\n\n### =>\n\n"
COMPLETION_ENDINGS = ["\n", ".", " END", "***", "+++", "&&&", "$$$", "@@@", "%%%"]
FALLBACK_ENDING = " [END]"
FIELDS = ["prompt", "completion"]


def show(text: str) -> str:
    return text.replace("\n", "\\n")


def infer_task_type(table: Table) -> str:
    prompts, completions = table.column("prompt"), table.column("completion")
    if all(p == "" for p in prompts):
        return "open-ended generation"
    if len(set(completions)) < len(table) / 3:
        return "classification"
    return "conditional generation"


def num_examples(table: Table) -> Remediation:
    extra = (
        ""
        if len(table) >= 100
        else (
            ". In general, we recommend having at least a few hundred examples. We've found that performance "
            "tends to linearly increase for every doubling of the number of examples"
        )
    )
    return Remediation("num_examples", f"\n- Your file contains {len(table)} prompt-completion pairs{extra}")


def necessary_column(table: Table, column: str) -> Remediation | None:
    columns = table.columns()
    if column in columns:
        return None
    matches = [c for c in columns if str(c).lower() == column]
    if matches:
        wrong = matches[0]

        def fix(t: Table) -> Table:
            return t.map(lambda r: {(column if k == wrong else k): v for k, v in r.items()})

        return Remediation(
            f"necessary_column_{column}",
            f"\n- The `{column}` column/key should be lowercase",
            f"Lower case column name to `{column}`",
            fix,
        )
    return Remediation(
        f"necessary_column_{column}",
        error_msg=(
            f"`{column}` column/key is missing. Please make sure you name your columns/keys appropriately, "
            "then retry"
        ),
    )


def additional_columns(table: Table) -> Remediation | None:
    extra = [c for c in table.columns() if c not in FIELDS]
    if not extra:
        return None
    return Remediation(
        "additional_column",
        f"\n- The input file should contain exactly two columns/keys per row. Additional "
        f"columns/keys present are: {extra}",
        f"Remove additional columns/keys: {extra}",
        lambda t: t.map(lambda r: {k: r.get(k, "") for k in FIELDS}),
    )


def non_empty_completion(table: Table) -> Remediation | None:
    empty = [n for r, n in zip(table.rows, table.lines, strict=True) if r.get("completion") in ("", None)]
    if not empty:
        return None
    return Remediation(
        "non_empty_field",
        f"\n- `completion` column/key should not contain empty strings. These are lines: {line_list(empty)}",
        f"Remove {len(empty)} rows with empty completions",
        lambda t: t.keep(lambda r: r.get("completion") not in ("", None)),
    )


def format_inferrer(table: Table) -> Remediation | None:
    if infer_task_type(table) != "classification":
        return None
    return Remediation(
        "format_inferrer",
        (
            "\n- Based on your data it seems like you're trying to fine-tune a model for classification"
            "\n- For classification, we recommend you try one of the faster and cheaper models, such as `ada`"
            "\n- For classification, you can estimate the expected model performance by keeping a held out "
            "dataset, which is not used for training"
        ),
    )


def duplicated_rows(table: Table) -> Remediation | None:
    seen: set[tuple] = set()
    dups = []
    for row, n in zip(table.rows, table.lines, strict=True):
        key = (row.get("prompt"), row.get("completion"))
        if key in seen:
            dups.append(n)
        seen.add(key)
    if not dups:
        return None
    return Remediation(
        "duplicated_rows",
        f"\n- There are {len(dups)} duplicated prompt-completion sets. These are lines: {line_list(dups)}",
        optional_msg=f"Remove {len(dups)} duplicate rows",
        optional_fn=lambda t: t.drop_lines(set(dups)),
    )


def _long(table: Table) -> list[int]:
    return [
        n
        for r, n in zip(table.rows, table.lines, strict=True)
        if len(r.get("prompt", "")) + len(r.get("completion", "")) > 10000
    ]


def long_examples(table: Table) -> Remediation | None:
    if infer_task_type(table) == "open-ended generation":
        return None
    longs = _long(table)
    if not longs:
        return None
    return Remediation(
        "long_examples",
        f"\n- There are {len(longs)} examples that are very long. These are lines: "
        f"{line_list(longs)}\nFor conditional generation, and for classification the examples "
        "shouldn't be longer than 2048 tokens.",
        optional_msg=f"Remove {len(longs)} long examples",
        optional_fn=lambda t: t.drop_lines(set(_long(t))),
    )


def lower_case(table: Table, column: str) -> Remediation | None:
    text = "".join(str(v) for v in table.column(column))
    upper = sum(1 for c in text if c.isalpha() and c.isupper())
    lower = sum(1 for c in text if c.isalpha() and c.islower())
    if upper * 2 <= lower:
        return None
    return Remediation(
        "lower_case",
        f"\n- More than a third of your `{column}` column/key is uppercase. Uppercase {column}s "
        "tends to perform worse than a mix of case encountered in normal language. We recommend "
        f"to lower case the data if that makes sense in your domain. See {DOCS} for more details",
        optional_msg=f"Lowercase all your data in column/key `{column}`",
        optional_fn=lambda t: t.map(lambda r: {**r, column: r[column].lower()}),
    )


def common_prompt_suffix(table: Table) -> Remediation | None:
    if infer_task_type(table) == "open-ended generation":
        return None
    prompts = table.column("prompt")
    suggested = FALLBACK_SEPARATOR
    any_newline = any("\n" in p for p in prompts)
    for option in PROMPT_SEPARATORS:
        if option == " ->" and any_newline:
            continue
        if any(option in p for p in prompts):
            continue
        suggested = option
        break
    suffix = common_xfix(prompts, suffix=True)
    if all(p == suffix for p in prompts):
        return Remediation(
            "common_suffix",
            error_msg=(
                f"All prompts are identical: `{suffix}`\nConsider leaving the prompts blank if you want to "
                "do open-ended generation, otherwise ensure prompts are different"
            ),
        )
    if suffix:
        msg = f"\n- All prompts end with suffix `{show(suffix)}`"
        if len(suffix) > 10:
            msg += (
                f". This suffix seems very long. Consider replacing with a shorter suffix, such as "
                f"`{show(suggested)}`"
            )
        if any(suffix in p[: -len(suffix)] for p in prompts):
            msg += (
                f"\n  WARNING: Some of your prompts contain the suffix `{suffix}` more than once. We "
                "strongly suggest that you review your prompts and add a unique suffix"
            )
        return Remediation("common_suffix", msg, details={"separator": suffix})
    return Remediation(
        "common_suffix",
        "\n- Your data does not contain a common separator at the end of your prompts. Having a "
        "separator string appended to the end of the prompt makes it clearer to the fine-tuned "
        f"model where the completion should begin. See {DOCS} for more detail and examples. If "
        "you intend to do open-ended generation, then you should leave the prompts empty",
        optional_msg=f"Add a suffix separator `{show(suggested)}` to all prompts",
        optional_fn=lambda t: t.map(lambda r: {**r, "prompt": r["prompt"] + suggested}),
        details={"separator": suggested},
    )


def common_prompt_prefix(table: Table) -> Remediation | None:
    prompts = table.column("prompt")
    prefix = common_xfix(prompts, suffix=False)
    if not prefix or all(p == prefix for p in prompts):
        return None
    msg = f"\n- All prompts start with prefix `{prefix}`"
    if len(prefix) <= 12:
        return Remediation("common_prefix", msg)
    msg += (
        ". Fine-tuning doesn't require the instruction specifying the task, or a few-shot example "
        "scenario. Most of the time you should only add the input data into the prompt, and the desired "
        "output into the completion"
    )
    return Remediation(
        "common_prefix",
        msg,
        optional_msg=f"Remove prefix `{prefix}` from all prompts",
        optional_fn=lambda t: t.map(lambda r: {**r, "prompt": r["prompt"][len(prefix) :]}),
    )


def common_completion_prefix(table: Table) -> Remediation | None:
    completions = table.column("completion")
    prefix = common_xfix(completions, suffix=False)
    if len(prefix) < 5 or all(c == prefix for c in completions):
        return None
    keep_space = prefix.startswith(" ")

    def strip(row: dict) -> dict:
        rest = row["completion"][len(prefix) :]
        return {**row, "completion": (" " + rest) if keep_space else rest}

    return Remediation(
        "common_completion_prefix",
        f"\n- All completions start with prefix `{prefix}`. Most of the time you should only add "
        "the output data into the completion, without any prefix",
        optional_msg=f"Remove prefix `{prefix}` from all completions",
        optional_fn=lambda t: t.map(strip),
    )


def common_completion_suffix(table: Table) -> Remediation | None:
    if infer_task_type(table) in ("open-ended generation", "classification"):
        return None
    completions = table.column("completion")
    suffix = common_xfix(completions, suffix=True)
    if all(c == suffix for c in completions):
        return Remediation(
            "common_completion_suffix",
            error_msg=(
                f"All completions are identical: `{suffix}`\nEnsure completions are different, otherwise the "
                f"model will just repeat `{suffix}`"
            ),
        )
    suggested = next((o for o in COMPLETION_ENDINGS if not any(o in c for c in completions)), FALLBACK_ENDING)
    if suffix:
        msg = f"\n- All completions end with suffix `{show(suffix)}`"
        if len(suffix) > 10:
            msg += (
                f". This suffix seems very long. Consider replacing with a shorter suffix, such as "
                f"`{show(suggested)}`"
            )
        if any(suffix in c[: -len(suffix)] for c in completions):
            msg += (
                f"\n  WARNING: Some of your completions contain the suffix `{suffix}` more than once. We "
                "suggest that you review your completions and add a unique ending"
            )
        return Remediation("common_completion_suffix", msg, details={"stop": suffix})
    return Remediation(
        "common_completion_suffix",
        "\n- Your data does not contain a common ending at the end of your completions. Having a "
        "common ending string appended to the end of the completion makes it clearer to the "
        f"fine-tuned model where the completion should end. See {DOCS} for more detail and "
        "examples.",
        optional_msg=f"Add a suffix ending `{show(suggested)}` to all completions",
        optional_fn=lambda t: t.map(lambda r: {**r, "completion": r["completion"] + suggested}),
        details={"stop": suggested},
    )


def completions_space_start(table: Table) -> Remediation | None:
    completions = table.column("completion")
    if all(c.startswith(" ") for c in completions):
        return None
    return Remediation(
        "completions_space_start",
        "\n- The completion should start with a whitespace character (` `). This tends to "
        f"produce better results due to the tokenization we use. See {DOCS} for more details",
        optional_msg="Add a whitespace character to the beginning of the completion",
        optional_fn=lambda t: t.map(
            lambda r: {**r, "completion": ("" if r["completion"].startswith(" ") else " ") + r["completion"]}
        ),
    )


def validators() -> list:
    """In `get_validators()` order."""
    return [
        num_examples,
        lambda t: necessary_column(t, "prompt"),
        lambda t: necessary_column(t, "completion"),
        additional_columns,
        non_empty_completion,
        format_inferrer,
        duplicated_rows,
        long_examples,
        lambda t: lower_case(t, "prompt"),
        lambda t: lower_case(t, "completion"),
        common_prompt_suffix,
        common_prompt_prefix,
        common_completion_prefix,
        common_completion_suffix,
        completions_space_start,
    ]


def classification_params(table: Table) -> str:
    counts = Counter(table.column("completion"))
    if len(counts) == 2:
        positive = counts.most_common(1)[0][0]
        return f' --compute_classification_metrics --classification_positive_class "{positive}"'
    return f" --compute_classification_metrics --classification_n_classes {len(counts)}"

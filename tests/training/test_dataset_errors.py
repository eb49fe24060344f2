"""What the trainer says about a bad dataset: the line in the file and the file's name, not a server path."""

from __future__ import annotations

import json

import pytest

from tuneforge.data.limits import min_examples
from tuneforge.training.config import ConfigError, TrainConfig
from tuneforge.training.dataset import DatasetError, load_examples

ROW = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})


def test_broken_line_is_named_by_its_line_in_the_file(tmp_path):
    path = tmp_path / "file-abc123.jsonl"
    path.write_text("\n".join([ROW, "", ROW, "", ROW, ROW, "{not json", ROW] + [ROW] * 5) + "\n", "utf-8")
    with pytest.raises(DatasetError) as err:
        load_examples(path, None, display_name="my_data.jsonl")
    message = str(err.value)
    assert "line 7" in message.lower() and message.startswith("my_data.jsonl: ")
    assert str(tmp_path) not in message


def test_too_few_examples_names_the_file_not_its_path(tmp_path):
    path = tmp_path / "file-abc123.jsonl"
    path.write_text("\n".join([ROW] * 2) + "\n", "utf-8")
    with pytest.raises(DatasetError) as err:
        load_examples(path, None, min_examples=min_examples("training", legacy=False))
    assert err.value.code == "invalid_n_examples"
    assert "at least 10" in str(err.value) and str(tmp_path) not in str(err.value)
    assert "file-abc123.jsonl" in str(err.value)
    # A legacy /v1/fine-tunes job trains the same 2-example file (OpenAI's legacy tutorial does).
    assert len(load_examples(path, None, min_examples=min_examples("training", legacy=True))) == 2


def test_min_examples_rule_and_config_field():
    assert min_examples("training", False) == 10
    assert min_examples("training", True) == 1
    assert min_examples("validation", False) == min_examples("validation", True) == 1
    base = {"base_model": "m", "training_file": "t.jsonl", "output_dir": "o"}
    assert TrainConfig.from_dict(base).min_examples == 10
    assert TrainConfig.from_dict({**base, "min_examples": 1}).min_examples == 1
    with pytest.raises(ConfigError, match="min_examples"):
        TrainConfig.from_dict({**base, "min_examples": 0})

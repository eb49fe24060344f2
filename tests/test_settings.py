import dataclasses
import json
from pathlib import Path

import pytest

from tuneforge.settings import (
    DEFAULT_ALIASES,
    SettingsError,
    ensure_writable_dir,
    load_settings,
    setting_fields,
)


def test_defaults_live_under_home(tmp_path):
    s = load_settings({"TUNEFORGE_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.database_url == f"sqlite:///{tmp_path / 'tuneforge.db'}"
    assert s.default_base_model == "smollm2-135m-instruct"
    assert all(s.resolve_alias(a) == "smollm2-135m-instruct" for a in DEFAULT_ALIASES)
    assert s.sources["home"] == "env TUNEFORGE_HOME"


def test_env_beats_config_file_beats_default(tmp_path):
    (tmp_path / "config.toml").write_text(
        '[tuneforge]\nport = 9000\norganization = "acme"\ndefault_base_model = "my-base"\n'
        '[tuneforge.aliases]\ncurie = "other-base"\n'
    )
    s = load_settings({"TUNEFORGE_HOME": str(tmp_path), "TUNEFORGE_PORT": "9100"})
    assert s.port == 9100 and s.sources["port"] == "env TUNEFORGE_PORT"
    assert s.organization == "acme" and s.sources["organization"].startswith("config ")
    # A changed default base moves every alias with it, except the ones the config pinned.
    assert s.resolve_alias("davinci") == "my-base"
    assert s.resolve_alias("curie") == "other-base"


def test_bad_config_names_file_and_setting(tmp_path):
    (tmp_path / "config.toml").write_text("[tuneforge]\nprot = 1\n")
    with pytest.raises(SettingsError, match=r"config.toml: unknown setting 'prot'"):
        load_settings({"TUNEFORGE_HOME": str(tmp_path)})
    (tmp_path / "config.toml").write_text("[tuneforge\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings({"TUNEFORGE_HOME": str(tmp_path)})
    (tmp_path / "config.toml").write_text("[tuneforge]\nport = 'x'\n")
    with pytest.raises(SettingsError, match="port .* must be an integer"):
        load_settings({"TUNEFORGE_HOME": str(tmp_path)})


def test_unwritable_directory_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(SettingsError, match=str(blocker / "sub")):
        ensure_writable_dir(Path(blocker / "sub"), "TUNEFORGE_HOME")


# Every setting added with the serving and training knobs: (field, variable, default, env text, value).
NEW_SETTINGS = [
    ("max_batch", "TUNEFORGE_MAX_BATCH", 16, "4", 4),
    ("max_queued", "TUNEFORGE_MAX_QUEUED", 64, "3", 3),
    ("max_adapters", "TUNEFORGE_MAX_ADAPTERS", 8, "2", 2),
    ("inference_backend", "TUNEFORGE_INFERENCE_BACKEND", "auto", "PyTorch", "pytorch"),
    ("inference_dtype", "TUNEFORGE_INFERENCE_DTYPE", "float32", "bfloat16", "bfloat16"),
    ("inference_threads", "TUNEFORGE_INFERENCE_THREADS", None, "2", 2),
    ("default_max_tokens", "TUNEFORGE_DEFAULT_MAX_TOKENS", None, "64", 64),
    ("llamacpp_cells", "TUNEFORGE_LLAMACPP_CELLS", 16384, "512", 512),
    ("llamacpp_weights", "TUNEFORGE_LLAMACPP_WEIGHTS", "q8_0", "source", "source"),
    ("llamacpp_merged_mb", "TUNEFORGE_LLAMACPP_MERGED_MB", 2048.0, "0", 0.0),
    ("llamacpp_log", "TUNEFORGE_LLAMACPP_LOG", False, "1", True),
    ("warm_trainer", "TUNEFORGE_WARM_TRAINER", True, "0", False),
    ("train_tokens_per_second", "TUNEFORGE_TRAIN_TOKENS_PER_SECOND", None, "250.5", 250.5),
    ("vllm_managed", "TUNEFORGE_VLLM_MANAGED", True, "no", False),
    ("vllm_max_loras", "TUNEFORGE_VLLM_MAX_LORAS", 8, "4", 4),
    ("vllm_max_lora_rank", "TUNEFORGE_VLLM_MAX_LORA_RANK", 16, "64", 64),
    ("vllm_max_model_len", "TUNEFORGE_VLLM_MAX_MODEL_LEN", 2048, "8192", 8192),
    ("vllm_start_timeout", "TUNEFORGE_VLLM_START_TIMEOUT", 600.0, "90", 90.0),
    ("vllm_base_adapter", "TUNEFORGE_VLLM_BASE_ADAPTER", True, "0", False),
]
# A value for the config file that differs from both the default and the env value.
IN_FILE = {"max_batch": 5, "max_queued": 7, "max_adapters": 1, "inference_backend": "llama.cpp",
           "inference_dtype": "float32", "inference_threads": 1, "default_max_tokens": 32,
           "llamacpp_cells": 1024,
           "llamacpp_weights": "q8_0", "llamacpp_merged_mb": 64, "llamacpp_log": False, "warm_trainer": True,
           "train_tokens_per_second": 99.0, "vllm_managed": True, "vllm_max_loras": 2,
           "vllm_max_lora_rank": 32, "vllm_max_model_len": 4096, "vllm_start_timeout": 300.0,
           "vllm_base_adapter": True}
BAD = {"max_batch": "abc", "max_queued": "0", "max_adapters": "-1", "inference_backend": "tgi",
       "inference_dtype": "float16", "inference_threads": "two", "default_max_tokens": "0",
       "llamacpp_cells": "1.5", "warm_trainer": "sometimes",
       "llamacpp_weights": "q4", "llamacpp_merged_mb": "-3", "llamacpp_log": "maybe",
       "train_tokens_per_second": "nan", "vllm_max_loras": "0", "vllm_managed": "perhaps",
       "vllm_start_timeout": "-5"}


def test_vllm_urls_are_base_equals_url_entries(tmp_path):
    home = {"TUNEFORGE_HOME": str(tmp_path)}
    s = load_settings({**home, "TUNEFORGE_VLLM_URLS": "b=http://gpu1:8000, b=https://gpu2:8000,c=http://x:1"})
    assert s.vllm_urls == ("b=http://gpu1:8000", "b=https://gpu2:8000", "c=http://x:1")
    for bad in ("http://gpu1:8000", "b=gpu1:8000", "=http://x"):
        with pytest.raises(SettingsError, match="base=url entries"):
            load_settings({**home, "TUNEFORGE_VLLM_URLS": bad})


def _toml(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value).replace("'", '"')


@pytest.mark.parametrize(("name", "var", "default", "env_text", "env_value"), NEW_SETTINGS)
def test_each_setting_reads_env_over_config_file_over_default(tmp_path, name, var, default, env_text,
                                                              env_value):
    home = {"TUNEFORGE_HOME": str(tmp_path)}
    s = load_settings(home)
    assert getattr(s, name) == default and s.sources[name] == "default"
    config = tmp_path / "config.toml"
    config.write_text(f"[tuneforge]\n{name} = {_toml(IN_FILE[name])}\n")
    s = load_settings(home)
    assert getattr(s, name) == IN_FILE[name] and s.sources[name] == f"config {config}"
    s = load_settings({**home, var: env_text})
    assert getattr(s, name) == env_value and s.sources[name] == f"env {var}"
    assert load_settings({**home, var: ""}).sources[name].startswith("config ")  # empty: unset


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_names_the_setting_and_where_it_came_from(tmp_path, name):
    var = next(v for n, v, *_ in NEW_SETTINGS if n == name)
    with pytest.raises(SettingsError, match=rf"^{name} from env {var} must be .*, got '{BAD[name]}'"):
        load_settings({"TUNEFORGE_HOME": str(tmp_path), var: BAD[name]})
    (tmp_path / "config.toml").write_text(f'[tuneforge]\n{name} = "{BAD[name]}"\n')
    with pytest.raises(SettingsError, match=rf"^{name} from config .*config.toml must be"):
        load_settings({"TUNEFORGE_HOME": str(tmp_path)})


def test_settings_stay_replaceable_and_every_field_has_a_variable_and_help(tmp_path):
    s = load_settings({"TUNEFORGE_HOME": str(tmp_path)})
    assert dataclasses.replace(s, max_batch=2).max_batch == 2
    variables = [f.metadata["env"] for f in setting_fields() if f.name != "aliases"]
    assert all(v.startswith("TUNEFORGE_") for v in variables) and len(set(variables)) == len(variables)
    assert all(f.metadata["help"] for f in setting_fields())


def test_tuneforge_config_lists_every_setting_with_its_source(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tuneforge.cli.main import app
    from tuneforge.settings import get_settings

    (tmp_path / "config.toml").write_text("[tuneforge]\nllamacpp_cells = 1024\n")
    monkeypatch.setenv("TUNEFORGE_HOME", str(tmp_path))
    monkeypatch.setenv("TUNEFORGE_MAX_BATCH", "4")
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["config", "--json"])
        table = CliRunner().invoke(app, ["config"], env={"COLUMNS": "250"})
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert set(data["settings"]) == {f.name for f in setting_fields()}
    assert data["settings"]["max_batch"] == 4 and data["sources"]["max_batch"] == "env TUNEFORGE_MAX_BATCH"
    assert data["sources"]["llamacpp_cells"] == f"config {tmp_path / 'config.toml'}"
    assert data["sources"]["max_queued"] == "default" and data["settings"]["inference_threads"] is None
    assert data["variables"]["train_tokens_per_second"] == "TUNEFORGE_TRAIN_TOKENS_PER_SECOND"
    assert table.exit_code == 0, table.output
    for _name, var, *_ in NEW_SETTINGS:
        assert var in table.output
    assert "env TUNEFORGE_MAX_BATCH" in table.output and "[tuneforge.aliases]" in table.output


def test_training_estimates_use_the_settings_they_are_given(tmp_path):
    from tuneforge.data.throughput import STARTUP_SECONDS, estimate_seconds

    s = load_settings({"TUNEFORGE_HOME": str(tmp_path), "TUNEFORGE_TRAIN_TOKENS_PER_SECOND": "100"})
    assert estimate_seconds(10_000, None, s) == STARTUP_SECONDS + 100

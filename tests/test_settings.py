from pathlib import Path

import pytest

from tuneforge.settings import DEFAULT_ALIASES, SettingsError, ensure_writable_dir, load_settings


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

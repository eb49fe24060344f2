"""Where the CLI sends its requests, and what a user sees when no server answers there."""

from __future__ import annotations

from clikit import run_cli
from testkit import free_port

from tuneforge.cli.client import resolve_api_key, resolve_base_url


def test_base_url_precedence_follows_the_openai_sdks():
    env = {"OPENAI_BASE_URL": "http://a:1/v1", "OPENAI_API_BASE": "http://b:2/v1"}
    assert resolve_base_url("http://flag:3/v1", env) == "http://flag:3/v1"
    assert resolve_base_url(None, env) == "http://a:1/v1"
    assert resolve_base_url(None, {"OPENAI_API_BASE": "http://b:2/v1/"}) == "http://b:2/v1"
    assert resolve_base_url(None, {}) == "http://127.0.0.1:8000/v1"
    assert resolve_base_url("http://host:9000", {}) == "http://host:9000/v1"  # `/v1` added when omitted
    assert resolve_api_key(None, {"OPENAI_API_KEY": "sk-x"}) == "sk-x"
    assert resolve_api_key("sk-flag", {"OPENAI_API_KEY": "sk-x"}) == "sk-flag"


def test_server_down_is_one_line_with_the_fix():
    url = f"http://127.0.0.1:{free_port()}/v1"
    for args in (["files", "list"], ["jobs", "list", "--json"], ["jobs", "follow", "ftjob-abc"],
                 ["models", "get", "ft:x:y::z"]):
        result = run_cli(*args, "--base-url", url)
        assert result.code == 1, args
        assert result.err.strip() == (f"error: no tuneforge server at {url}; start one with "
                                      "`tuneforge serve` (or point --base-url / OPENAI_BASE_URL at yours)")
        assert "Traceback" not in result.err + result.out


def test_env_var_of_the_0x_sdk_is_honoured():
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = run_cli("jobs", "list", env={"OPENAI_API_BASE": url, "OPENAI_BASE_URL": ""})
    assert url in result.err and result.code == 1


def test_every_command_has_help():
    from typer.testing import CliRunner

    from tuneforge.cli.main import app

    top = run_cli("--help")  # the installed command; the subcommands' help in-process (a second each)
    assert top.code == 0
    for group, commands in {"files": ["upload", "list", "get", "delete", "download"],
                            "jobs": ["create", "follow", "list", "get", "events", "cancel", "pause", "resume",
                                     "results", "checkpoints"],
                            "models": ["list", "get", "delete", "export"]}.items():
        assert group in top.out
        for command in commands:
            result = CliRunner().invoke(app, [group, command, "--help"], prog_name="tuneforge",
                                        env={"COLUMNS": "200"})
            assert result.exit_code == 0 and "Usage: tuneforge " + group + " " + command in result.output
    assert "--compare" in CliRunner().invoke(app, ["eval", "--help"], prog_name="tuneforge").output

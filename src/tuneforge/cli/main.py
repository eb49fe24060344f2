"""The `tuneforge` command. Each command group lives in its own module and is added here."""

from __future__ import annotations

import json
import sys
from importlib import import_module

import typer

from tuneforge.cli import models as models_cli
from tuneforge.cli.errors import USER_ERRORS, err_console, user_error
from tuneforge.models.catalog import UnknownModelError
from tuneforge.models.provision import ProvisionError
from tuneforge.quiet import quiet_libraries
from tuneforge.settings import SettingsError, get_settings

for _cls in (UnknownModelError, ProvisionError, SettingsError):
    user_error(_cls)

app = typer.Typer(
    name="tuneforge",
    help="Fine-tune open models the way OpenAI taught: prepare, upload, create a job, follow it, chat.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_cli.app, name="models")
import_module("tuneforge.cli.serve").register(app)  # `serve` and `keys`
app.add_typer(import_module("tuneforge.cli.eval").app, name="eval", help="Evaluate models on held-out data.")
app.add_typer(import_module("tuneforge.cli.files").app, name="files")
app.add_typer(import_module("tuneforge.cli.jobs").app, name="jobs")
import_module("tuneforge.cli.worker").register(app)  # `worker`
app.command("prepare")(import_module("tuneforge.cli.data").prepare)
app.command("convert")(import_module("tuneforge.cli.data").convert)
import_module("tuneforge.cli.chat").register(app)  # `chat` and `complete`
import_module("tuneforge.cli.migrate").register(app)  # `migrate`


@app.command("config")
def config_command(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show every setting in force, its environment variable and where it came from (env, config
    file, default)."""
    from tuneforge.settings import setting_fields

    settings = get_settings()
    values = settings.as_dict()
    specs = {f.name: f.metadata for f in setting_fields()}
    if as_json:
        print(json.dumps({"settings": values, "sources": settings.sources,
                          "config_file": str(settings.config_file), "config_found": settings.config_found,
                          "variables": {k: m["env"] or None for k, m in specs.items()},
                          "help": {k: m["help"] for k, m in specs.items()}}, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    where = f"{settings.config_file} ({'read' if settings.config_found else 'not found'}; TUNEFORGE_CONFIG " \
        "names another)"
    table = Table("setting", "variable", "value", "from", "meaning", title="tuneforge settings",
                  caption=escape(f"config file: {where}. Precedence: env > config file > default."))
    for key, value in values.items():
        if key == "aliases":
            value = ", ".join(f"{a} -> {b}" for a, b in sorted(value.items()))
        shown = "(unset)" if value is None else ", ".join(value) if isinstance(value, list) else str(value)
        table.add_row(key, specs[key]["env"] or "config file only", escape(shown),
                      escape(settings.sources.get(key, "default")), escape(specs[key]["help"]))
    Console().print(table)


def main() -> None:
    quiet_libraries()
    # Line by line even into a pipe (`jobs follow | tee log`, a supervisor): events show when they happen.
    sys.stdout.reconfigure(line_buffering=True)
    try:
        app()
    except tuple(USER_ERRORS) as exc:  # type: ignore[misc]
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()

"""Imports every table module so `Base.metadata` knows them all. Add new table modules here."""

import importlib

for _module in ("tables_files", "tables_jobs", "tables_aliases", "tables_permissions"):
    try:
        importlib.import_module(f"tuneforge.store.{_module}")
    except ModuleNotFoundError as exc:  # a table module that is not written yet
        if exc.name != f"tuneforge.store.{_module}":
            raise

"""Fixtures for the training tests (helpers live in trainkit.py, a name no other test folder uses)."""

from trainkit import chat_file, valid_file  # noqa: F401  (fixtures)

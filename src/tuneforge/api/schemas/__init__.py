"""Pydantic models of the OpenAI shapes, one module per endpoint family, re-exported here."""

"""OpenAI-compatible HTTP API (FastAPI). Translates HTTP into calls to data/, jobs/ and serving/."""

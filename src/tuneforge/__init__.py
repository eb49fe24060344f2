"""tuneforge: OpenAI's fine-tuning workflow, self-hosted, for open models."""

__version__ = "0.1.0"

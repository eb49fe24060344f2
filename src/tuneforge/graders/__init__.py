"""OpenAI's graders (openai-api.md §13) as a pure library: validate grader JSON, render its templates,
and score a model sample. It knows no HTTP, serving or jobs; score_model graders get an injected `ask`.
Docs: docs/graders.md."""

from tuneforge.graders.errors import GraderError
from tuneforge.graders.run import Ask, chat_fields, run_grader
from tuneforge.graders.spec import validate

__all__ = ["Ask", "GraderError", "chat_fields", "run_grader", "validate"]

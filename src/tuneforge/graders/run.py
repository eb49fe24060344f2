"""Running a validated grader on one model sample (and optional dataset item): the reward and the
metadata OpenAI's `/fine_tuning/alpha/graders/run` answers with.

score_model graders call an injected `ask(model, messages, sampling_params) -> str` (the API passes one
that asks the serving engine); the first number in the reply is the score, clamped to `range` (default
[0, 1]). A reply with no number scores 0 and sets `metadata.errors.model_grader_parse_error`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from tuneforge.graders import formula, spec, templates
from tuneforge.graders.errors import GraderError
from tuneforge.graders.metrics import METRICS

Ask = Callable[[str, list[dict], dict], str]
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
ERROR_FLAGS = ("formula_parse_error", "invalid_variable_error", "model_grader_parse_error",
               "model_grader_refusal_error", "model_grader_server_error", "other_error",
               "python_grader_runtime_error", "python_grader_server_error", "sample_parse_error",
               "truncated_observation_error", "unresponsive_reward_error")


# OpenAI's score_model sampling_params -> chat completion fields (`max_completions_tokens` is its spelling).
_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "seed": "seed",
             "max_completions_tokens": "max_completion_tokens",
             "max_completion_tokens": "max_completion_tokens"}


def chat_fields(sampling_params: dict) -> dict:
    """A score_model grader's `sampling_params` as `/v1/chat/completions` fields (unknown, null: dropped)."""
    return {_SAMPLING[k]: v for k, v in sampling_params.items() if k in _SAMPLING and v is not None}


def no_errors() -> dict:
    return {**dict.fromkeys(ERROR_FLAGS, False), "model_grader_server_error_details": None,
            "python_grader_runtime_error_details": None, "python_grader_server_error_type": None}


class _Run:
    def __init__(self, sample: str, item: Any, ask: Ask | None):
        self.sample, self.item, self.ask = templates.Sample(sample), item, ask
        self.errors = no_errors()

    def render(self, text: str, param: str) -> str:
        return templates.render(text, self.sample, self.item, param)

    def score(self, grader: dict, param: str) -> float:
        kind = grader["type"]
        if kind == "string_check":
            return self.string_check(grader, param)
        if kind == "text_similarity":
            pred = self.render(grader["input"], f"{param}.input")
            ref = self.render(grader["reference"], f"{param}.reference")
            return METRICS[grader["evaluation_metric"]](pred, ref)
        if kind == "score_model":
            return self.score_model(grader, param)
        raise GraderError(f"A {kind} grader cannot be run here.", f"{param}.type")

    def string_check(self, grader: dict, param: str) -> float:
        a = self.render(grader["input"], f"{param}.input")
        b = self.render(grader["reference"], f"{param}.reference")
        op = grader["operation"]
        result = {"eq": a == b, "ne": a != b, "like": b in a, "ilike": b.casefold() in a.casefold()}[op]
        return float(result)

    def score_model(self, grader: dict, param: str) -> float:
        if self.ask is None:
            raise GraderError("score_model graders need a model to ask, and none is available here.",
                              f"{param}.model")
        messages = []
        for i, message in enumerate(grader["input"]):
            where = f"{param}.input.{i}"
            parts = spec.content_texts(message.get("content"), where)
            messages.append({"role": message["role"],
                             "content": "".join(self.render(t, f"{where}.content") for t in parts)})
        reply = self.ask(grader["model"], messages, dict(grader.get("sampling_params") or {}))
        low, high = grader.get("range") or (0.0, 1.0)
        found = _NUMBER.search(reply or "")
        if found is None:
            self.errors["model_grader_parse_error"] = True
            return 0.0
        return min(max(float(found.group()), float(low)), float(high))


def run_grader(grader: Any, model_sample: str, item: Any = None, ask: Ask | None = None) -> dict:
    """Validate and run `grader`; the `GraderRunResponse` body."""
    started = time.monotonic()
    spec.validate(grader)
    if not isinstance(model_sample, str):
        raise GraderError("'model_sample' must be a string (the model's output).", "model_sample")
    run = _Run(model_sample, item, ask)
    sub_rewards: dict[str, float] = {}
    if grader["type"] == "multi":
        subs = spec.sub_graders(grader)
        for name, sub in subs.items():
            sub_rewards[name] = run.score(sub, f"grader.graders.{name}")
        tree = formula.parse(grader["calculate_output"], set(subs))
        reward = formula.evaluate(tree, sub_rewards)
    else:
        reward = run.score(grader, "grader")
    scores = dict(sub_rewards) if sub_rewards else {grader["name"]: reward}
    return {"reward": reward,
            "metadata": {"errors": run.errors, "execution_time": time.monotonic() - started,
                         "name": grader["name"], "sampled_model_name": None, "scores": scores,
                         "token_usage": None, "type": grader["type"]},
            "sub_rewards": sub_rewards, "model_grader_token_usage_per_model": {}}

"""What a caller asks the engine for, and what the engine sends back (plain data, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuneforge.errors import UserError


class ServingError(UserError):
    """A request the engine cannot serve; `status`, `param` and `code` map it to an OpenAI error."""


class ModelNotFound(ServingError):
    def __init__(self, model: str, detail: str = ""):
        if not detail and (model.startswith(("/", "~", ".")) or "\\" in model or ":/" in model):
            # a path: never echoed (nor looked at); models are served by name only
            detail = ("The model given by a path does not exist or you do not have access to it: name a "
                      "model by its id (see GET /v1/models).")
        super().__init__(detail or f"The model `{model}` does not exist or you do not have access to it.",
                         status=404, param="model", code="model_not_found")
        self.model = model


class ClientGone(ServingError):
    """The client closed the connection: nothing to answer, nothing to log but one line."""

    def __init__(self):
        super().__init__("The client disconnected.", status=499)


class QueueFull(ServingError):
    def __init__(self, limit: int, retry_after: float):
        super().__init__(f"The server is at its limit of {limit} concurrent generation requests. "
                         f"Retry after {retry_after:.0f} s, or raise `max_queued` in the engine settings.",
                         status=429, code="rate_limit_exceeded", retry_after=retry_after)


@dataclass
class SamplingParams:
    max_tokens: int | None = None  # None: up to the end of the context
    temperature: float = 1.0
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    logprobs: int | None = None  # None: no logprobs; k: the sampled token plus the top k alternatives
    json_mode: bool = False  # constrain the output to JSON: an object, or `json_schema` when given
    json_schema: dict | None = None
    json_parser: object | None = None  # the schema's parser, compiled before submit (serving/grammar.py)
    ignore_eos: bool = False


@dataclass
class GenerationRequest:
    model: str
    prompt_ids: list[int]
    params: SamplingParams
    n: int = 1  # sequences generated from this prompt (best_of for legacy completions)
    prompt_logprobs: bool = False  # logprobs of the prompt tokens themselves (legacy echo + logprobs)
    project: str = "default"


@dataclass
class TokenInfo:
    token_id: int
    text: str  # the token's own text (may be a partial UTF-8 character)
    logprob: float
    top: list[tuple[int, str, float]] = field(default_factory=list)  # alternatives, best first


@dataclass
class Delta:
    """New text for sequence `index`; `tokens` are the tokens whose text starts in this delta."""

    index: int
    text: str
    tokens: list[TokenInfo]


@dataclass
class Finished:
    index: int
    finish_reason: str  # "stop" | "length"
    completion_tokens: int
    cumulative_logprob: float


@dataclass
class PromptLogprobs:
    tokens: list[TokenInfo]  # first token has logprob nan (nothing predicts it)

"""Request bodies of `/v1/chat/completions` and `/v1/completions` (openai-api.md §8-9).

Ranges follow OpenAI's, so an out-of-range, NaN or wrongly typed value is a 400 naming the field. Fields
OpenAI accepts but that do not change generation here (`user`, `metadata`, `store`, ...) are accepted and
ignored. Limits on sizes (messages, tools, stop, prompts) keep one request from tying up the server.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

MAX_MESSAGES = 2048
MAX_TOOLS = 128
MAX_STOP = 4
MAX_PROMPTS = 128
INT64 = 2**63


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: StrictBool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: dict[str, Any] | None = None


def _number(ge: float, le: float):
    return Field(None, ge=ge, le=le, allow_inf_nan=False)


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=512)
    temperature: float | None = _number(0, 2)
    top_p: float | None = _number(0, 1)
    n: int | None = Field(None, ge=1, le=128)
    stop: str | list[str] | None = None
    presence_penalty: float | None = _number(-2, 2)
    frequency_penalty: float | None = _number(-2, 2)
    logit_bias: dict[str, float] | None = None
    seed: int | None = Field(None, ge=-INT64, lt=INT64)  # OpenAI: a 64-bit integer
    # Strict: pydantic would read "yes" or 1 as true; OpenAI refuses anything but a JSON boolean.
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    ignore_eos: StrictBool = False  # vLLM's extension: decode exactly max_tokens (benchmarks)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, v):
        if v is None or isinstance(v, str):
            return v
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise ValueError("expected a string or an array of up to 4 strings")
        if len(v) > MAX_STOP:
            raise ValueError(f"{len(v)} stop sequences given; at most {MAX_STOP} are allowed")
        return v

    @field_validator("logit_bias", mode="before")
    @classmethod
    def _logit_bias(cls, v):
        if v is None:
            return v
        if not isinstance(v, dict):
            raise ValueError("expected an object mapping token ids to numbers from -100 to 100")
        for key, value in v.items():
            if not (isinstance(key, str) and key.isascii() and key.isdigit()):
                raise ValueError(f"key {key!r} is not a token id (a whole number in a string, e.g. \"42\")")
            if isinstance(value, bool) or not isinstance(value, int | float) or not -100 <= value <= 100:
                raise ValueError(f"value {value!r} for token {key} is not a number from -100 to 100")
        return v


def _check_tools(v, what: str):
    if v is None:
        return v
    if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
        raise ValueError(f"expected an array of {what} objects")
    if len(v) > MAX_TOOLS:
        raise ValueError(f"{len(v)} {what}s given; at most {MAX_TOOLS} are allowed")
    for i, t in enumerate(v):
        fn = t.get("function", t) if what == "tool" else t
        if what == "tool" and t.get("type", "function") != "function":
            raise ValueError(f"{what} {i} has type {t.get('type')!r}; only 'function' is supported")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn.get("name"):
            raise ValueError(f"{what} {i} needs a function with a non-empty string 'name'")
        if fn.get("parameters") is not None and not isinstance(fn["parameters"], dict):
            raise ValueError(f"{what} {i} ({fn['name'][:64]!r}): 'parameters' must be a JSON Schema object")
    return v


class ChatCompletionRequest(_Sampling):
    messages: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: StrictBool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    functions: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: StrictBool | None = None
    function_call: Any = None  # deprecated, with `functions`: "none" | "auto" | {"name": ...}

    @field_validator("tools", mode="before")
    @classmethod
    def _tools(cls, v):
        return _check_tools(v, "tool")

    @field_validator("functions", mode="before")
    @classmethod
    def _functions(cls, v):
        return _check_tools(v, "function")

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, choice, info: ValidationInfo):
        """As OpenAI: a mode string, or a function that `tools` declares (`tools` is checked first)."""
        if choice is None or choice in ("none", "auto", "required"):
            return choice
        function = choice.get("function") if isinstance(choice, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or choice.get("type") != "function":
            raise ValueError("expected 'none', 'auto', 'required' or "
                             "{'type': 'function', 'function': {'name': ...}}")
        declared = {t["function"]["name"] for t in info.data.get("tools") or ()}
        if name not in declared:
            raise ValueError(f"names function {name[:64]!r}, which `tools` does not declare")
        return choice


    @field_validator("function_call")
    @classmethod
    def _function_call(cls, choice, info: ValidationInfo):
        if choice is None or choice in ("none", "auto"):
            return choice
        name = choice.get("name") if isinstance(choice, dict) else None
        if not isinstance(name, str):
            raise ValueError("expected 'none', 'auto' or {'name': ...}")
        if name not in {f["name"] for f in info.data.get("functions") or ()}:
            raise ValueError(f"names function {name[:64]!r}, which `functions` does not declare")
        return choice


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]] | None = "<|endoftext|>"
    max_tokens: int | None = Field(16, ge=0)
    logprobs: int | None = Field(None, ge=0, le=5)
    echo: StrictBool | None = False
    best_of: int | None = Field(None, ge=1, le=20)
    suffix: str | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, v):
        if v is None or isinstance(v, str):
            return v
        if not isinstance(v, list):
            raise ValueError("expected a string, an array of strings, token ids, or arrays of token ids")
        if all(_is_id(t) for t in v) or all(isinstance(t, str) for t in v):
            items = [v] if v and _is_id(v[0]) else v
        elif all(isinstance(t, list) and all(_is_id(i) for i in t) for t in v):
            items = v
        else:
            raise ValueError("mixes types: send a string, strings, token ids, or arrays of token ids")
        if len(items) > MAX_PROMPTS:
            raise ValueError(f"{len(items)} prompts given; at most {MAX_PROMPTS} per request")
        return v


def _is_id(t) -> bool:
    return isinstance(t, int) and not isinstance(t, bool)

"""Turn one dataset row into token ids plus the loss mask the trainer uses.

Chat rows go through the tokenizer's own chat template, so training sees exactly the text serving will
produce. The mask is computed from character spans of the rendered text (where each assistant turn starts
and ends), never from padding: SmolLM2's pad token *is* `<|im_end|>`, the end-of-turn token we must train.
Legacy rows are raw `prompt + completion + eos`, as OpenAI's legacy API trained them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tuneforge.data import tool_calls

IGNORE = -100


@dataclass
class EncodedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE where there is no loss; aligned with input_ids (the model shifts)
    loss_weights: list[float] | None  # per token, only when prompt_loss_weight > 0
    truncated: bool
    n_trained_tokens: int


def _message_for_template(message: dict) -> dict:
    """A copy the template can render: tool/function calls become JSON text when there is no content."""
    out = {k: v for k, v in message.items() if k not in ("weight",)}
    if out.get("content") is None:
        calls = message.get("tool_calls") or message.get("function_call")
        out["content"] = json.dumps(calls, ensure_ascii=False) if calls else ""
    elif not isinstance(out["content"], str):  # content parts: keep the text ones
        out["content"] = "".join(p.get("text", "") for p in out["content"] if isinstance(p, dict))
    return out


def _render(tokenizer, messages: list[dict], tools, generation_prompt: bool) -> str:
    kwargs = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt,
                                         **kwargs)


def _template_inputs(tokenizer, example: dict) -> tuple[list[dict], list | None, int]:
    """Rows for the chat template, its `tools=`, and the rows added before the first message. Tool
    conversations use the one format serving also uses (data/tool_calls.py)."""
    tools = tool_calls.declared_tools(example.get("tools"), example.get("functions"))
    if tool_calls.uses_tools(example["messages"], tools):
        return tool_calls.template_rows(tokenizer, example["messages"], tools)
    return [_message_for_template(m) for m in example["messages"]], example.get("tools"), 0


def _assistant_spans(tokenizer, example: dict) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the (start, end) character spans of every trained assistant turn,
    each ending just after its end-of-turn token."""
    messages, tools, offset = _template_inputs(tokenizer, example)
    text = _render(tokenizer, messages, tools, False)
    eot = tokenizer.eos_token or ""
    spans = []
    for i, original in enumerate(example["messages"]):
        if original.get("role") != "assistant" or original.get("weight", 1) == 0:
            continue
        head = _render(tokenizer, messages[: i + offset], tools, True) if i + offset else ""
        upto = _render(tokenizer, messages[: i + offset + 1], tools, False)
        if not (text.startswith(upto) and upto.startswith(head)):
            raise ValueError("the chat template is not prefix-stable; cannot locate assistant turns")
        start, end = len(head), len(upto)
        turn = text[start:end]
        cut = turn.rfind(eot) if eot else -1
        # Train through the end-of-turn token, not the template's trailing newline.
        end = start + cut + len(eot) if cut >= 0 else start + len(turn.rstrip())
        spans.append((start, end))
    return text, spans


def _encode_chat(example: dict, tokenizer) -> tuple[list[int], list[bool]]:
    text, spans = _assistant_spans(tokenizer, example)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    trained = [any(s < b and a < e for s, e in spans) for a, b in enc["offset_mapping"]]
    return list(enc["input_ids"]), trained


def _encode_legacy(example: dict, tokenizer) -> tuple[list[int], list[bool]]:
    prompt = tokenizer(example.get("prompt", ""), add_special_tokens=False)["input_ids"]
    completion = tokenizer(example.get("completion", ""), add_special_tokens=False)["input_ids"]
    ids = list(prompt) + list(completion) + [tokenizer.eos_token_id]
    return ids, [False] * len(prompt) + [True] * (len(completion) + 1)


def _trained_flags(example: dict, tokenizer) -> tuple[list[int], list[bool]]:
    if "messages" in example:
        return _encode_chat(example, tokenizer)
    if "prompt" in example or "completion" in example:
        return _encode_legacy(example, tokenizer)
    raise ValueError("row has neither 'messages' (chat) nor 'prompt'/'completion' (legacy)")


def encode_example(example: dict, tokenizer, max_length: int,
                   prompt_loss_weight: float = 0.0) -> EncodedExample:
    """Token ids and labels for one row, truncated from the end to `max_length` tokens."""
    ids, trained = _trained_flags(example, tokenizer)
    truncated = len(ids) > max_length
    ids, trained = ids[:max_length], trained[:max_length]
    weights = None
    if prompt_loss_weight > 0:
        labels = list(ids)
        weights = [1.0 if t else float(prompt_loss_weight) for t in trained]
    else:
        labels = [tok if t else IGNORE for tok, t in zip(ids, trained, strict=True)]
    if labels:
        labels[0] = IGNORE  # nothing predicts the first token
        if weights:
            weights[0] = 0.0
    n_trained = sum(1 for t in trained[1:] if t)
    return EncodedExample(ids, labels, weights, truncated, n_trained)


def render_example(example: dict, tokenizer, max_length: int = 4096, open_mark: str = "[[",
                   close_mark: str = "]]") -> str:
    """The text the model sees, trained spans wrapped in `open_mark`/`close_mark` (`prepare --show`)."""
    encoded = encode_example(example, tokenizer, max_length)
    out, inside = [], False
    for tok, label in zip(encoded.input_ids, encoded.labels, strict=True):
        trained = label != IGNORE
        if trained != inside:
            out.append(open_mark if trained else close_mark)
            inside = trained
        out.append(tokenizer.decode([tok]))
    if inside:
        out.append(close_mark)
    if encoded.truncated:
        out.append(f"\n[truncated to {max_length} tokens]")
    return "".join(out)

"""Score one loaded model on held-out rows: loss, perplexity and token accuracy on the reference answers
(the same loss mask training uses), and greedy answers generated for each prompt."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tuneforge.data.encode import IGNORE, encode_example


@dataclass
class Prompt:
    """The part of a row the model is asked, and the answer it should give."""

    question: str  # for display: the last user message, or the legacy prompt
    reference: str
    messages: list[dict] | None = None  # chat rows: the conversation up to the reference answer
    prompt: str | None = None  # legacy rows: the raw prompt text


def split_prompt(row: dict) -> Prompt:
    """The last assistant turn is the reference; what precedes it is the prompt."""
    if "messages" in row:
        messages = row["messages"]
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        if last is None:
            raise ValueError("a chat row without an assistant message has no reference answer")
        context = messages[:last]
        users = [m for m in context if m.get("role") == "user"]
        question = str(users[-1].get("content", "")) if users else ""
        return Prompt(question, str(messages[last].get("content") or ""), messages=context)
    return Prompt(row.get("prompt", ""), row.get("completion", ""), prompt=row.get("prompt", ""))


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


@torch.inference_mode()
def reference_metrics(model, tokenizer, rows: list[dict], max_length: int = 2048,
                      batch_size: int = 8) -> dict[str, float]:
    """Mean per-token loss, perplexity and token accuracy over every trained token of `rows`."""
    encoded = [encode_example(row, tokenizer, max_length) for row in rows]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total_loss, total_correct, total_tokens = 0.0, 0, 0
    device = next(model.parameters()).device
    for batch in _batches(encoded, batch_size):
        width = max(len(e.input_ids) for e in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, e in enumerate(batch):
            n = len(e.input_ids)
            ids[i, :n] = torch.tensor(e.input_ids)
            labels[i, :n] = torch.tensor(e.labels)
            mask[i, :n] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        # Position t predicts token t+1; labels carry IGNORE where nothing is trained.
        logits, targets = logits[:, :-1], labels[:, 1:].to(device)
        keep = targets != IGNORE
        loss = torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum")
        total_loss += float(loss)
        total_correct += int((logits[keep].argmax(-1) == targets[keep]).sum())
        total_tokens += int(keep.sum())
    mean = total_loss / max(total_tokens, 1)
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)),
            "token_accuracy": total_correct / max(total_tokens, 1), "tokens": total_tokens}


def _prompt_text(tokenizer, prompt: Prompt) -> str:
    if prompt.messages is not None:
        return tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    return prompt.prompt or ""


@torch.inference_mode()
def generate_answers(model, tokenizer, prompts: list[Prompt], max_new_tokens: int = 128,
                     batch_size: int = 8) -> list[str]:
    """Greedy answers, batched with left padding; each batch stops at its longest reference + slack,
    since an answer much longer than the reference cannot score better."""
    device = next(model.parameters()).device
    texts = [_prompt_text(tokenizer, p) for p in prompts]
    ref_lens = [len(tokenizer(p.reference, add_special_tokens=False)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(texts[i]))  # similar lengths pad less
    answers: list[str] = [""] * len(prompts)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for batch in _batches(order, batch_size):
            enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(device)
            budget = min(max_new_tokens, int(max(ref_lens[i] for i in batch) * 1.5) + 8)
            out = model.generate(**enc, max_new_tokens=budget, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            for row, i in enumerate(batch):
                new = out[row, enc["input_ids"].shape[1]:]
                answers[i] = tokenizer.decode(new, skip_special_tokens=True).strip()
    finally:
        tokenizer.padding_side = side
    return answers

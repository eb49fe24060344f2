"""Per-row sampling: logit bias, presence/frequency penalties, JSON constraint, temperature, top-p, seed,
and the logprobs OpenAI reports (of the model's distribution after bias/penalties, before temperature)."""

from __future__ import annotations

import torch

from tuneforge.serving.params import SamplingParams, TokenInfo


def enforcer_data(tokenizer):
    key = (getattr(tokenizer, "name_or_path", ""), len(tokenizer))
    if key not in _ENFORCER_DATA:
        _ENFORCER_DATA[key] = _build_enforcer_data(tokenizer)
    return _ENFORCER_DATA[key]


_ENFORCER_DATA: dict = {}


def _build_enforcer_data(tokenizer):
    """lm-format-enforcer's view of the vocabulary (its transformers helper predates transformers 5).
    Built once per tokenizer: it decodes the whole vocabulary."""
    from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData

    special = set(tokenizer.all_special_ids)
    ids = [i for i in range(len(tokenizer)) if i not in special]
    zero = tokenizer.encode("0", add_special_tokens=False)[-1]
    after_zero = tokenizer.batch_decode([[zero, i] for i in ids])
    alone = tokenizer.batch_decode([[i] for i in ids])
    regular = [(i, a[1:], len(a) - 1 > len(b)) for i, a, b in zip(ids, after_zero, alone, strict=True)]

    def decode(tokens: list[int]) -> str:
        return tokenizer.decode(tokens).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(regular, decode, list(_eos_ids(tokenizer)), False, len(tokenizer))


def _eos_ids(tokenizer) -> set[int]:
    ids = (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>"),
           tokenizer.convert_tokens_to_ids("<|endoftext|>"))
    return {i for i in ids if i is not None and i != tokenizer.unk_token_id}


class RowSampler:
    """The sampling state of one sequence: its generator, token counts and JSON enforcer."""

    def __init__(self, params: SamplingParams, tokenizer, prompt_ids: list[int], seed_offset: int = 0):
        self.params = params
        self._tok = tokenizer
        self._history = list(prompt_ids)
        self.generator = None
        if params.seed is not None:
            self.generator = torch.Generator().manual_seed(int(params.seed) + seed_offset)
        self.counts: dict[int, int] = {}
        self.enforcer = None
        if params.json_mode:
            from lmformatenforcer import JsonSchemaParser, TokenEnforcer

            parser = params.json_parser or JsonSchemaParser(params.json_schema or {"type": "object"})
            self.enforcer = TokenEnforcer(enforcer_data(tokenizer), parser)

    def adjust(self, logits: torch.Tensor) -> None:
        """Apply this row's bias, penalties and JSON constraint to its float32 logits [V], in place."""
        p = self.params
        if p.logit_bias:
            idx = torch.tensor(list(p.logit_bias), dtype=torch.long)
            logits[idx] += torch.tensor(list(p.logit_bias.values()), dtype=logits.dtype)
        if self.counts and (p.presence_penalty or p.frequency_penalty):
            idx = torch.tensor(list(self.counts), dtype=torch.long)
            cnt = torch.tensor(list(self.counts.values()), dtype=logits.dtype)
            logits[idx] -= p.frequency_penalty * cnt + p.presence_penalty
        if self.enforcer is not None:
            allowed = self.enforcer.get_allowed_tokens(self._history).allowed_tokens
            keep = logits[torch.tensor(allowed, dtype=torch.long)]
            logits.fill_(float("-inf"))
            logits[torch.tensor(allowed, dtype=torch.long)] = keep

    def record(self, token: int) -> None:
        self._history.append(token)
        self.counts[token] = self.counts.get(token, 0) + 1

    def info(self, token: int, logprobs: torch.Tensor) -> TokenInfo:
        k = self.params.logprobs
        top: list[tuple[int, str, float]] = []
        if k:
            values, ids = torch.topk(logprobs, k)
            top = [(int(i), self._tok.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)]
        text = self._tok.decode([token]) if k is not None else ""
        return TokenInfo(token, text, float(logprobs[token]), top)


def sample_batch(rows: list[RowSampler], logits: torch.Tensor) -> list[TokenInfo | Exception]:
    """Choose the next token of every row from float32 logits [B, V] with a few batched operations
    (per-row loops over a 49k vocabulary are slow on a busy CPU). A row whose constraint fails gets its
    exception instead of a token: only its own request ends."""
    failed: dict[int, Exception] = {}
    for i, row in enumerate(rows):
        try:
            row.adjust(logits[i])
        except Exception as exc:
            failed[i] = exc
            logits[i].fill_(0.0)  # any finite row: its token is discarded
    logprobs = torch.log_softmax(logits, dim=-1)
    greedy = torch.argmax(logits, dim=-1).tolist()
    if all(r.params.temperature <= 0 for r in rows):
        drawn = greedy
    else:
        drawn = _draw(rows, logits)
    out: list[TokenInfo | Exception] = []
    for i, row in enumerate(rows):
        if i in failed:
            out.append(failed[i])
            continue
        token = greedy[i] if row.params.temperature <= 0 else drawn[i]
        row.record(token)
        out.append(row.info(token, logprobs[i]))
    return out


def _draw(rows: list[RowSampler], logits: torch.Tensor) -> list[int]:
    temps = torch.tensor([max(r.params.temperature, 1e-5) for r in rows]).unsqueeze(1)
    probs = torch.softmax(logits / temps, dim=-1)
    top_p = torch.tensor([r.params.top_p for r in rows])
    if bool((top_p < 1.0).any()):
        sorted_p, order = torch.sort(probs, dim=-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (always at least the best token).
        cut = (torch.cumsum(sorted_p, dim=-1) - sorted_p) >= top_p.unsqueeze(1)
        probs = probs.scatter(1, order, sorted_p.masked_fill(cut, 0.0))
    # Inverse-CDF sampling: one uniform number per row (seeded rows draw theirs from their generator).
    cdf = torch.cumsum(probs, dim=-1)
    u = torch.rand(len(rows))
    for i, row in enumerate(rows):
        if row.generator is not None:
            u[i] = torch.rand(1, generator=row.generator)[0]
    target = (u.unsqueeze(1) * cdf[:, -1:]).contiguous()
    return torch.searchsorted(cdf, target).clamp_(max=probs.shape[1] - 1).squeeze(1).tolist()


PROMPT_CHUNK = 256  # prompt positions scored at a time: [256, V] floats, not [L, V] twice over


def prompt_token_infos(tokenizer, prompt_ids: list[int], logits: torch.Tensor, k: int) -> list[TokenInfo]:
    """Logprobs of each prompt token given the ones before it (the first has none): for `echo`. Scored
    chunk by chunk, keeping only each token's logprob and its top k (a full log-softmax copy of a
    4,000-token prompt is 800 MB)."""
    out = [TokenInfo(prompt_ids[0], tokenizer.decode([prompt_ids[0]]), float("nan"))]
    for start in range(0, len(prompt_ids) - 1, PROMPT_CHUNK):
        end = min(start + PROMPT_CHUNK, len(prompt_ids) - 1)
        rows = torch.log_softmax(logits[start:end].float(), dim=-1)
        targets = torch.tensor(prompt_ids[start + 1:end + 1], dtype=torch.long)
        chosen = rows.gather(1, targets.unsqueeze(1)).squeeze(1).tolist()
        tops = torch.topk(rows, k, dim=-1) if k else None
        for j, tok in enumerate(targets.tolist()):
            top = []
            if tops is not None:
                top = [(int(i), tokenizer.decode([int(i)]), float(v))
                       for v, i in zip(tops.values[j], tops.indices[j], strict=True)]
            out.append(TokenInfo(tok, tokenizer.decode([tok]), chosen[j], top))
        del rows
    return out


def stop_token_ids(tokenizer, model_config) -> set[int]:
    """Tokens that end a sequence: the tokenizer's EOS, ChatML's end of turn, and the model's own EOS list."""
    ids = _eos_ids(tokenizer)
    eos = getattr(getattr(model_config, "generation_config", None), "eos_token_id", None)
    eos = eos if eos is not None else getattr(model_config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(eos)
    return ids

"""DPO's loss (sigmoid DPO, Rafailov et al. 2023) over preference pairs.

For a pair, log p(answer | prompt) is the sum of the token log-probabilities of the final assistant
message (its end-of-turn token included), under the policy and under the frozen reference. With
beta-scaled log-ratios r_chosen = beta * (log p_policy(chosen) - log p_ref(chosen)) and r_rejected
likewise, the loss is -log sigmoid(r_chosen - r_rejected). Both answers of a pair share one packed row
(examples never attend to each other, see dataset.py), so a pair's loss is complete within its row and the
gradient is accumulated row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tuneforge.data.encode import IGNORE
from tuneforge.data.preference import EncodedPair
from tuneforge.training.dataset import PackedRow, pack
from tuneforge.training.model import causal_lm_parts
from tuneforge.training.step import _head, autocast_context


@dataclass
class DPOStats:
    loss_sum: float = 0.0
    n_pairs: int = 0
    n_correct: int = 0  # pairs whose chosen reward beats the rejected one
    margin_sum: float = 0.0
    chosen_sum: float = 0.0
    rejected_sum: float = 0.0
    n_input_tokens: int = 0

    def _mean(self, total: float) -> float:
        return total / max(self.n_pairs, 1)

    @property
    def loss(self) -> float:
        return self._mean(self.loss_sum)

    def metrics(self, prefix: str) -> dict:
        """OpenAI-style names: `{prefix}_loss`, `{prefix}_reward_accuracy`, ... (prefix train/valid)."""
        return {f"{prefix}_loss": self.loss, f"{prefix}_reward_accuracy": self._mean(self.n_correct),
                f"{prefix}_reward_margin": self._mean(self.margin_sum),
                f"{prefix}_chosen_reward": self._mean(self.chosen_sum),
                f"{prefix}_rejected_reward": self._mean(self.rejected_sum)}


def pair_rows(indices: list[int], pairs: list[EncodedPair],
              token_budget: int) -> list[tuple[list[int], PackedRow]]:
    """Pack pairs (chosen then rejected, never split) into rows of about `token_budget` tokens."""
    groups: list[list[int]] = []
    used = 0
    for i in indices:
        if groups and used + pairs[i].n_tokens <= token_budget:
            groups[-1].append(i)
            used += pairs[i].n_tokens
        else:
            groups.append([i])
            used = pairs[i].n_tokens
    out = []
    for group in groups:
        examples = [ex for i in group for ex in (pairs[i].chosen, pairs[i].rejected)]
        out.append((group, pack(examples, 10**9)[0]))
    return out


def sequence_logps(model, row: PackedRow, device: str, bf16: bool) -> torch.Tensor:
    """Per example of the row, the sum of log-probabilities of its trained (answer) tokens: [n_examples]."""
    decoder, lm_head, softcap = causal_lm_parts(model)
    targets = row.targets.to(device)
    keep = torch.nonzero(targets != IGNORE).flatten()
    with autocast_context(device, bf16):
        hidden = decoder(input_ids=row.input_ids.to(device), position_ids=row.position_ids.to(device),
                         use_cache=False).last_hidden_state[0]
        logits = _head(lm_head, hidden.index_select(0, keep), bf16)
    logits = logits.float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    token_logps = -F.cross_entropy(logits, targets.index_select(0, keep), reduction="none")
    lengths = torch.tensor([len(p) for p in row.seq_correct], device=token_logps.device)
    owner = torch.repeat_interleave(torch.arange(len(row.seq_correct), device=token_logps.device), lengths)
    return torch.zeros(len(row.seq_correct), device=token_logps.device).index_add(0, owner, token_logps)


def dpo_terms(policy: torch.Tensor, reference: torch.Tensor, beta: float):
    """policy, reference: [n, 2] log-probs (chosen, rejected); returns (losses, chosen, rejected rewards)."""
    rewards = beta * (policy - reference.to(policy.device))
    chosen, rejected = rewards[:, 0], rewards[:, 1]
    return -F.logsigmoid(chosen - rejected), chosen.detach(), rejected.detach()


def _record(stats: DPOStats, losses, chosen, rejected, row: PackedRow) -> None:
    stats.loss_sum += float(losses.detach().sum())
    stats.n_pairs += int(losses.numel())
    stats.n_correct += int((chosen > rejected).sum())
    stats.margin_sum += float((chosen - rejected).sum())
    stats.chosen_sum += float(chosen.sum())
    stats.rejected_sum += float(rejected.sum())
    stats.n_input_tokens += int(row.input_ids.numel())


def train_pairs(model, pairs: list[EncodedPair], reference: torch.Tensor, indices: list[int], device: str,
                bf16: bool, beta: float, token_budget: int) -> DPOStats:
    """Forward and backward over one batch of pairs (the loss is their mean); returns its stats."""
    stats = DPOStats()
    for group, row in pair_rows(indices, pairs, token_budget):
        policy = sequence_logps(model, row, device, bf16).view(-1, 2)
        losses, chosen, rejected = dpo_terms(policy, reference[group], beta)
        (losses.sum() / len(indices)).backward()
        _record(stats, losses, chosen, rejected, row)
    return stats


@torch.no_grad()
def eval_pairs(model, pairs: list[EncodedPair], reference: torch.Tensor, indices: list[int], device: str,
               bf16: bool, beta: float, token_budget: int) -> DPOStats:
    stats = DPOStats()
    for group, row in pair_rows(indices, pairs, token_budget):
        policy = sequence_logps(model, row, device, bf16).view(-1, 2)
        _record(stats, *dpo_terms(policy, reference[group], beta), row)
    return stats


@torch.no_grad()
def pair_logps(model, pairs: list[EncodedPair], device: str, bf16: bool, token_budget: int) -> torch.Tensor:
    """[n_pairs, 2] log p(chosen), log p(rejected) under `model` as it is now (eval mode): the reference
    before training starts, and the preference margin (column 0 - column 1) a measurement compares."""
    was_training = model.training
    model.eval()
    out = torch.zeros(len(pairs), 2)
    for group, row in pair_rows(list(range(len(pairs))), pairs, token_budget):
        out[group] = sequence_logps(model, row, device, bf16).view(-1, 2).float().cpu()
    model.train(was_training)
    return out

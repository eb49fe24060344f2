"""The loss mask decides what the model learns: check it token by token against the chat template."""

from __future__ import annotations

from tuneforge.data.encode import IGNORE, encode_example, render_example

CHAT = {"messages": [
    {"role": "system", "content": "You are Acme support."},
    {"role": "user", "content": "How do I reset my password?"},
    {"role": "assistant", "content": "Open Settings, then Security, then Reset."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You're welcome."},
]}


def _trained_text(tokenizer, enc) -> list[str]:
    """Decoded runs of consecutive trained tokens."""
    runs, current = [], []
    for tok, lab in zip(enc.input_ids, enc.labels, strict=True):
        if lab != IGNORE:
            assert lab == tok
            current.append(tok)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs


def test_chat_ids_match_the_template_exactly(tokenizer):
    enc = encode_example(CHAT, tokenizer, max_length=512)
    expected = tokenizer.apply_chat_template(CHAT["messages"], tokenize=True, return_dict=True)["input_ids"]
    assert enc.input_ids == list(expected)
    assert not enc.truncated and enc.loss_weights is None


def test_loss_only_on_assistant_turns_including_end_of_turn(tokenizer):
    enc = encode_example(CHAT, tokenizer, max_length=512)
    assert _trained_text(tokenizer, enc) == [
        "Open Settings, then Security, then Reset.<|im_end|>",
        "You're welcome.<|im_end|>",
    ]
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    # <|im_end|> closes every turn (also the pad token!), but only the assistant ones carry loss.
    ends = [i for i, t in enumerate(enc.input_ids) if t == im_end]
    assert len(ends) == 5
    assert [enc.labels[i] == im_end for i in ends] == [False, False, True, False, True]
    assert enc.n_trained_tokens == sum(1 for lab in enc.labels if lab != IGNORE)


def test_weight_zero_turn_is_not_trained(tokenizer):
    row = {"messages": [dict(m) for m in CHAT["messages"]]}
    row["messages"][2]["weight"] = 0
    enc = encode_example(row, tokenizer, max_length=512)
    assert _trained_text(tokenizer, enc) == ["You're welcome.<|im_end|>"]
    # The weight key never reaches the rendered text.
    assert enc.input_ids == encode_example(CHAT, tokenizer, max_length=512).input_ids


def test_default_system_prompt_is_never_trained(tokenizer):
    row = {"messages": CHAT["messages"][1:3]}
    enc = encode_example(row, tokenizer, max_length=512)
    assert _trained_text(tokenizer, enc) == ["Open Settings, then Security, then Reset.<|im_end|>"]


def test_legacy_prompt_completion_eos(tokenizer):
    row = {"prompt": "Company: Acme\nQ: refund window?\nA:", "completion": " 30 days."}
    enc = encode_example(row, tokenizer, max_length=512)
    assert enc.input_ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(enc.input_ids) == row["prompt"] + row["completion"] + tokenizer.eos_token
    assert _trained_text(tokenizer, enc) == [" 30 days." + tokenizer.eos_token]


def test_prompt_loss_weight_weights_prompt_tokens(tokenizer):
    row = {"prompt": "Q: refund window?\nA:", "completion": " 30 days."}
    enc = encode_example(row, tokenizer, max_length=512, prompt_loss_weight=0.1)
    n_prompt = len(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
    assert enc.loss_weights[0] == 0.0
    assert set(enc.loss_weights[1:n_prompt]) == {0.1}
    assert set(enc.loss_weights[n_prompt:]) == {1.0}
    assert enc.labels[1:] == enc.input_ids[1:]


def test_truncation_from_the_end(tokenizer):
    full = encode_example(CHAT, tokenizer, max_length=512)
    enc = encode_example(CHAT, tokenizer, max_length=30)
    assert enc.truncated and len(enc.input_ids) == 30
    assert enc.input_ids == full.input_ids[:30]
    assert enc.labels == full.labels[:30]


def test_render_marks_trained_spans(tokenizer):
    text = render_example(CHAT, tokenizer)
    assert "[[Open Settings, then Security, then Reset.<|im_end|>]]" in text
    assert "[[You're welcome.<|im_end|>]]" in text
    assert text.count("[[") == 2

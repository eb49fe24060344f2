"""Per-message `weight` (OpenAI's chat format): an assistant message with `weight: 0` is shown to the
model but not trained on; one with `weight: 1` is trained, token for token over its own characters."""

from __future__ import annotations

from tuneforge.data.encode import IGNORE, encode_example

ROW = {"messages": [
    {"role": "system", "content": "You are Acme support."},
    {"role": "user", "content": "How do I reset my password?"},
    {"role": "assistant", "content": "WRONG: email us a photo of your passport.", "weight": 0},
    {"role": "user", "content": "That sounds unsafe."},
    {"role": "assistant", "content": "Open Settings, then Security, then Reset.", "weight": 1},
]}


def _span(text: str, content: str) -> tuple[int, int]:
    start = text.index(content)
    return start, start + len(content)


def test_weight_zero_message_is_ignored_and_weight_one_message_is_trained(tokenizer):
    enc = encode_example(ROW, tokenizer, max_length=512)
    plain = [{k: v for k, v in m.items() if k != "weight"} for m in ROW["messages"]]
    text = tokenizer.apply_chat_template(plain, tokenize=False)
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert len(offsets) == len(enc.input_ids)  # the weight key changes nothing the model sees

    def labels_within(span: tuple[int, int]) -> list[int]:
        return [lab for (a, b), lab in zip(offsets, enc.labels, strict=True) if span[0] <= a and b <= span[1]]

    skipped = labels_within(_span(text, ROW["messages"][2]["content"]))
    trained = labels_within(_span(text, ROW["messages"][4]["content"]))
    assert len(skipped) >= 8 and set(skipped) == {IGNORE}
    assert len(trained) >= 8 and IGNORE not in trained
    # Nothing outside the weight-1 message (and its end-of-turn token) carries loss.
    end = _span(text, ROW["messages"][4]["content"])[1]
    outside = [lab for (a, b), lab in zip(offsets, enc.labels, strict=True)
               if lab != IGNORE and not (_span(text, ROW["messages"][4]["content"])[0] <= a and b <= end)]
    assert [tokenizer.decode([t]) for t in outside] == ["<|im_end|>"]
    assert enc.n_trained_tokens == len(trained) + 1

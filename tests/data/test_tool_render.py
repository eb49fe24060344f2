"""A tool conversation renders the same at training (data/encode.py) and at inference (the chat prompt)."""

from __future__ import annotations

import json

from tuneforge.data.encode import encode_example, render_example
from tuneforge.serving.openai_chat import chat_prompt_text

TOOLS = [{"type": "function", "function": {
    "name": "get_order_status", "description": "Look up an order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                   "required": ["order_id"]}}}]
CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_order_status", "arguments": json.dumps({"order_id": "A1"})}}
MESSAGES = [{"role": "user", "content": "Where is order A1?"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "shipped"},
            {"role": "assistant", "content": "It shipped."}]


def test_training_prompt_equals_serving_prompt_for_each_assistant_turn(tokenizer):
    example = {"tools": TOOLS, "messages": MESSAGES}
    encoded = encode_example(example, tokenizer, 4096)
    train_text = tokenizer.decode(encoded.input_ids)
    first_prompt = chat_prompt_text(tokenizer, MESSAGES[:1], TOOLS)
    second_prompt = chat_prompt_text(tokenizer, MESSAGES[:3], TOOLS)
    assert train_text.startswith(first_prompt) and train_text.startswith(second_prompt)
    assert "get_order_status" in first_prompt and "<tools>" in first_prompt  # the model sees the tools
    call = '<tool_call>\n{"name": "get_order_status", "arguments": {"order_id": "A1"}}\n</tool_call>'
    assert train_text[len(first_prompt):].startswith(call + "<|im_end|>")
    assert '<tool_response id="call_1" name="get_order_status">\nshipped\n</tool_response>' in second_prompt


def test_only_the_assistant_turns_are_trained(tokenizer):
    shown = render_example({"tools": TOOLS, "messages": MESSAGES}, tokenizer)
    trained = [part.split("]]")[0] for part in shown.split("[[")[1:]]
    assert trained == ['<tool_call>\n{"name": "get_order_status", "arguments": {"order_id": "A1"}}\n'
                       '</tool_call><|im_end|>', "It shipped.<|im_end|>"]


def test_deprecated_functions_render_like_tools(tokenizer):
    legacy = {"functions": [TOOLS[0]["function"]], "messages": [
        MESSAGES[0], {"role": "assistant", "content": None,
                      "function_call": {"name": "get_order_status", "arguments": '{"order_id": "A1"}'}}]}
    modern = {"tools": TOOLS, "messages": MESSAGES[:2]}
    assert render_example(legacy, tokenizer) == render_example(modern, tokenizer)


def test_conversations_without_tools_render_as_before(tokenizer):
    plain = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    text = tokenizer.decode(encode_example({"messages": plain}, tokenizer, 512).input_ids)
    assert text == tokenizer.apply_chat_template(plain, tokenize=False)
    assert "<tools>" not in text


# A template that renders tools itself, in the style of Qwen's and Llama 3.1's: tools go in as `tools=`,
# calls stay structured (arguments a dict), tool results are their own role.
NATIVE_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTOOLS:{% for t in tools %} {{ t.function.name }}{% endfor %}"
    "<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}CALL {{ c.function.name }} "
    "{{ c.function.arguments | tojson }}{% endfor %}{% else %}{{ m.content }}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_a_template_with_tool_support_renders_the_tools_itself(tokenizer):
    import copy

    native_tok = copy.deepcopy(tokenizer)
    native_tok.chat_template = NATIVE_TEMPLATE  # mentions `tools` and `tool_calls`: used as it is
    encoded = encode_example({"tools": TOOLS, "messages": MESSAGES}, native_tok, 4096)
    train_text = native_tok.decode(encoded.input_ids)
    first_prompt = chat_prompt_text(native_tok, MESSAGES[:1], TOOLS)
    assert first_prompt.startswith("<|im_start|>system\nTOOLS: get_order_status<|im_end|>")
    assert "<tools>" not in train_text and "<tool_call>" not in train_text  # no fallback format
    assert train_text.startswith(first_prompt)
    assert train_text[len(first_prompt):].startswith('CALL get_order_status {"order_id": "A1"}<|im_end|>')
    assert train_text.startswith(chat_prompt_text(native_tok, MESSAGES[:3], TOOLS))
    assert "<|im_start|>tool\nshipped<|im_end|>" in train_text

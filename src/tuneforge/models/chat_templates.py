"""Chat templates for bases that ship without one.

A pretrained (not instruction-tuned) model often has no chat template: its GGUF, for one, carries none. Chat
fine-tuning and `/v1/chat/completions` need a turn format, and the right one is the model family's own, the
format its instruction-tuned sibling was taught (fine-tuning teaches it to the base). A family not listed
here gets a clear refusal instead of a guessed format.
"""

from __future__ import annotations

# Gemma's turns: the assistant is "model"; a system message opens the first user turn, as Gemma's own
# template does. No whitespace control: the newlines are part of the format.
_GEMMA = (
    "{{ bos_token }}"
    "{% if messages and messages[0]['role'] in ('system', 'developer') %}"
    "{% set preamble = messages[0]['content'] + '\n\n' %}{% set turns = messages[1:] %}"
    "{% else %}{% set preamble = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{{ preamble if loop.first else '' }}{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# model_type (config.json) -> (template, the token that ends a turn)
FAMILY_TEMPLATES: dict[str, tuple[str, str]] = {
    "gemma": (_GEMMA, "<end_of_turn>"),
    "gemma2": (_GEMMA, "<end_of_turn>"),
    "gemma3": (_GEMMA, "<end_of_turn>"),
    "gemma3_text": (_GEMMA, "<end_of_turn>"),
}


class NoChatTemplate(ValueError):
    """A base has no chat template and its family's format is not known; the message says what to do."""


def supply_chat_template(tokenizer, model_type: str | None, where: str) -> bool:
    """Give `tokenizer` its family's chat template when it has none (True when one was supplied); raises
    NoChatTemplate for a family without a known format. The turn token must be in the vocabulary:
    provisioning makes generation stop at it, and training trains through it."""
    if getattr(tokenizer, "chat_template", None):
        return False
    family = FAMILY_TEMPLATES.get(model_type or "")
    if family is None or family[1] not in tokenizer.get_vocab():
        raise NoChatTemplate(
            f"{where}: this model has no chat template, and tuneforge knows no turn format for its family "
            f"({model_type or 'unknown'}; known: {', '.join(sorted(FAMILY_TEMPLATES))}). Register the "
            "instruction-tuned version of the model, or a Hugging Face folder whose tokenizer has a "
            "chat_template (chat_template.jinja beside tokenizer_config.json)."
        )
    tokenizer.chat_template = family[0]
    return True


def folder_has_chat_template(folder) -> bool:
    """Whether a Hugging Face folder's tokenizer carries a chat template (read from its files; nothing is
    loaded). A folder with no tokenizer_config.json counts as having one: there is nothing to judge."""
    import json
    from pathlib import Path

    folder = Path(folder)
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return True
    try:
        return bool(json.loads(config.read_text("utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return True  # unreadable: loading the tokenizer reports it better than a guess here

"""A base without a chat template (a pretrained model's GGUF) gets its family's turn format, or a clear
refusal: never a transformers traceback at `models check` or at the first training step."""

import shutil
import subprocess
import sys

import pytest

from tuneforge.data.encode import encode_example
from tuneforge.models.catalog import UnknownModelError, register_base
from tuneforge.models.chat_templates import NoChatTemplate, supply_chat_template


@pytest.fixture
def templateless_tokenizer(base_folder):
    """The real base's tokenizer as a pretrained Gemma's arrives: no chat template, turn tokens in its
    vocabulary."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    tokenizer.chat_template = None
    tokenizer.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    return tokenizer


CONVERSATION = [
    {"role": "system", "content": "You are Tidal's support assistant."},
    {"role": "user", "content": "How much is the Tidal pass?"},
    {"role": "assistant", "content": "The Tidal pass costs $39 a year."},
]


def test_a_gemma_base_gets_gemmas_turns(templateless_tokenizer):
    assert supply_chat_template(templateless_tokenizer, "gemma3_text", "gemma.gguf") is True
    text = templateless_tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    bos = templateless_tokenizer.bos_token or ""
    assert text == (f"{bos}<start_of_turn>user\nYou are Tidal's support assistant.\n\n"
                    "How much is the Tidal pass?<end_of_turn>\n"
                    "<start_of_turn>model\nThe Tidal pass costs $39 a year.<end_of_turn>\n")
    prompt = templateless_tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False,
                                                        add_generation_prompt=True)
    assert prompt.endswith("<start_of_turn>model\n") and text.startswith(prompt)


def test_training_learns_the_answer_through_its_end_of_turn(templateless_tokenizer):
    supply_chat_template(templateless_tokenizer, "gemma3", "gemma.gguf")
    encoded = encode_example({"messages": CONVERSATION}, templateless_tokenizer, max_length=256)
    trained = [tok for tok, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != -100]
    assert templateless_tokenizer.decode(trained) == "The Tidal pass costs $39 a year.<end_of_turn>"


def test_a_template_that_exists_is_kept(base_folder):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    before = tokenizer.chat_template
    assert supply_chat_template(tokenizer, "gemma3", "x") is False and tokenizer.chat_template == before


def test_an_unknown_family_is_refused_with_what_to_do(templateless_tokenizer):
    with pytest.raises(NoChatTemplate) as info:
        supply_chat_template(templateless_tokenizer, "llama", "/models/base.gguf")
    message = str(info.value)
    assert message.startswith("/models/base.gguf: this model has no chat template")
    assert "(llama; known: gemma" in message and "instruction-tuned" in message


@pytest.fixture
def templateless_folder(tmp_path, tiny_model_dir):
    folder = tmp_path / "pretrained"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, folder / name)
    return folder


def test_a_folder_without_a_template_is_refused_at_models_add(settings, templateless_folder):
    with pytest.raises(UnknownModelError, match="its tokenizer has no chat template"):
        register_base("pretrained", str(templateless_folder), settings)
    cli = subprocess.run([sys.executable, "-m", "tuneforge.cli.main", "models", "add", "pretrained",
                          str(templateless_folder)], capture_output=True, text=True, timeout=120)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr
    assert "no chat template" in cli.stderr and "chat_template.jinja" in cli.stderr

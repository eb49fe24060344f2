import os
import subprocess
import sys

import pytest

from tuneforge.models.catalog import UnknownModelError, register_base, resolve_base
from tuneforge.models.provision import ProvisionError, provision, verify_folder


def test_aliases_resolve_to_builtin_base(settings):
    for alias in ("davinci", "curie", "gpt-3.5-turbo", "gpt-4o-mini-2024-07-18"):
        spec = resolve_base(alias, settings)
        assert spec.name == "smollm2-135m-instruct" and spec.builtin


def test_unknown_model_lists_bases_and_aliases(settings):
    with pytest.raises(UnknownModelError) as info:
        resolve_base("gpt-9", settings)
    message = str(info.value)
    assert "gpt-9" in message and "smollm2-135m-instruct" in message and "davinci-002" in message


def test_builtin_cache_verifies(settings, base_folder):
    ok, reason = verify_folder(base_folder)
    assert ok, reason
    assert (base_folder / "chat_template.jinja").is_file()
    assert (base_folder / "generation_config.json").is_file()


def test_a_verified_file_is_hashed_again_only_when_it_changes(tmp_path, monkeypatch):
    import importlib
    import json

    prov = importlib.import_module("tuneforge.models.provision")  # the package exports a same-named function
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights" * 1000)
    (tmp_path / prov.MANIFEST).write_text(json.dumps({"version": prov.MANIFEST_VERSION, "files": {
        "model.safetensors": prov.sha256_file(weights)}}))
    hashed = []
    real = prov.sha256_file
    monkeypatch.setattr(prov, "sha256_file", lambda path: hashed.append(path.name) or real(path))
    assert verify_folder(tmp_path) == (True, "ok") and hashed == ["model.safetensors"]
    assert verify_folder(tmp_path) == (True, "ok") and hashed == ["model.safetensors"]  # unchanged: no hash
    stat = weights.stat()
    with weights.open("r+b") as fh:  # same size, and the old mtime put back: the ctime still gives it away
        fh.seek(100)
        fh.write(b"X")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert verify_folder(tmp_path) == (False, "model.safetensors does not match its checksum")
    assert len(hashed) == 2


def test_local_folder_registers_and_resolves(settings, tiny_model, tiny_model_dir):
    spec = resolve_base(tiny_model, settings)
    assert spec.kind == "hf_folder"
    assert provision(spec, settings) == tiny_model_dir


def test_truncated_gguf_is_refused(settings, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    spec = register_base("broken-gguf", str(bad), settings)
    with pytest.raises(ProvisionError, match="broken.gguf: cannot load this GGUF"):
        provision(spec, settings)
    assert not (settings.cache_dir / "models" / "broken-gguf").exists()  # nothing half-written


def test_hub_id_fails_fast_offline(settings):
    spec = resolve_base("HuggingFaceTB/SmolLM2-360M-Instruct", settings)
    assert spec.kind == "hub"
    with pytest.raises(ProvisionError, match="hub id.*tuneforge models add"):
        provision(spec, settings)


def test_cli_lists_bases_and_every_alias(settings):
    out = subprocess.run([sys.executable, "-m", "tuneforge.cli.main", "models", "list", "--json"],
                         capture_output=True, text=True, check=True).stdout
    import json

    data = json.loads(out)
    assert any(b["id"] == "smollm2-135m-instruct" and b["provisioned"] for b in data["bases"])
    assert {a["id"] for a in data["aliases"]} >= {"davinci", "curie", "babbage", "ada", "gpt-4o-mini"}


def test_cli_unknown_model_is_one_line_error(settings):
    proc = subprocess.run([sys.executable, "-m", "tuneforge.cli.main", "models", "pull", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Unknown model 'nope'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_corrupt_cache_is_detected_and_rebuilt(settings, base_folder, tmp_path):
    import shutil
    from dataclasses import replace

    from tuneforge.settings import load_settings

    cache_settings = replace(load_settings({**os.environ, "TUNEFORGE_CACHE": str(tmp_path / "cache")}))
    copy = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    shutil.copytree(base_folder, copy)
    with (copy / "model.safetensors").open("r+b") as fh:
        fh.seek(10_000_000)
        fh.write(b"\x00" * 64)
    ok, reason = verify_folder(copy)
    assert not ok and "checksum" in reason
    messages = []
    folder = provision(resolve_base("smollm2-135m-instruct", cache_settings), cache_settings,
                       progress=messages.append)
    assert any("invalid" in m and "rebuilding" in m for m in messages)
    assert verify_folder(folder)[0]


@pytest.mark.slow
def test_real_base_answers_in_fluent_english(settings):
    import torch

    from tuneforge.models import load_base_model, load_tokenizer

    tok = load_tokenizer("curie", settings)
    model = load_base_model("curie", settings)
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=20, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer

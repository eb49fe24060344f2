"""Merging a LoRA adapter into a copy of the served GGUF base: the update survives 8-bit rounding, even
one smaller than a rounding step (as a gently trained adapter's is), and nothing else in the file moves."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from testkit import random_lora

from tuneforge.models.catalog import resolve_base
from tuneforge.models.export_gguf import convert_lora
from tuneforge.models.provision import source_path
from tuneforge.serving.backends.llamacpp import serving_gguf
from tuneforge.serving.backends.lora_merge import NotMergeable, lora_deltas, merge_lora, tensor_table

pytestmark = pytest.mark.slow  # the real base's GGUF files

BASE = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def files(settings, base_folder, tmp_path_factory):
    source = source_path(resolve_base(BASE, settings))
    folder = tmp_path_factory.mktemp("merge")
    # b_scale 0.02: updates of about 5e-4, under half the 8-bit step of these weights (about 2.5e-3)
    adapter = random_lora(base_folder, folder / "adapter", base_model=BASE, seed=3, rank=8, alpha=16,
                          b_scale=0.02)
    lora = convert_lora(adapter, base_folder, folder / "lora.gguf")
    return source, serving_gguf(source, base_folder), lora, folder


def _weights(path, slot, rows: int) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.uint8, count=slot.size, offset=slot.offset).reshape(rows, -1)
    return gguf.quants.dequantize(raw, gguf.GGMLQuantizationType[slot.type_name])


def test_the_merged_weights_carry_an_update_smaller_than_one_rounding_step(files):
    source, serving, lora, folder = files
    merged = merge_lora(source, serving, lora, folder / "merged.gguf")
    src, out = tensor_table(source), tensor_table(merged)
    assert out == tensor_table(serving)  # same tensors, types and places
    num = den = 0.0
    for name, delta in lora_deltas(lora):
        change = _weights(merged, out[name], delta.shape[0]) - _weights(source, src[name], delta.shape[0])
        num, den = num + float((change * delta).sum()), den + float((delta * delta).sum())
    # How much of the update the merged weights carry, on average over every adapted weight: all of it
    # (rounding adds noise around it, not a bias). Merged onto the 8-bit copy's own grid it would be
    # rounded away, which is why the weights are taken from the source file.
    assert 0.95 < num / den < 1.05
    unchanged = "token_embd.weight"
    assert np.array_equal(_weights(merged, out[unchanged], 1), _weights(serving, out[unchanged], 1))


def test_weights_already_on_their_8_bit_grid_or_4_bit_ones_are_refused(files):
    source, serving, lora, folder = files
    with pytest.raises(NotMergeable, match="rounding step"):
        merge_lora(serving, serving, lora, folder / "grid.gguf")
    with pytest.raises(NotMergeable, match="8 bits"):
        merge_lora(source, source, lora, folder / "q4.gguf")
    assert not list(folder.glob("*.partial")) and not (folder / "grid.gguf").exists()

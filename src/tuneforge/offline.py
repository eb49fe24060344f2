"""Nothing downloads at run time: the one library that would, kept off the Hugging Face hub.

bitsandbytes (PEFT imports it for every LoRA model it loads, when it is installed: the qlora extra) asks
the hub for a CPU matmul kernel (`kernels-community/quantization-bitsandbytes`) as it is imported on a CPU
with avx512_bf16. Its import therefore runs with the hub set offline: it finds no cached kernel, falls back
to its own, and its warning about that (which no tuneforge user can act on) is not shown.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys

_PACKAGE = "bitsandbytes"
# What logs the offline kernel lookup and its failure
_WARNS = ("bitsandbytes.backends.cpu.ops", "kernels._internals.hf_hub")


class _OfflineImport(importlib.abc.Loader):
    """bitsandbytes' own loader, run with huggingface_hub's offline switch on."""

    def __init__(self, inner: importlib.abc.Loader):
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module) -> None:
        from huggingface_hub import constants

        offline = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True
        loggers = [logging.getLogger(name) for name in _WARNS]
        levels = [log.level for log in loggers]
        for log in loggers:
            log.setLevel(logging.ERROR)
        try:
            self._inner.exec_module(module)
        finally:
            constants.HF_HUB_OFFLINE = offline
            for log, level in zip(loggers, levels, strict=True):
                log.setLevel(level)

    def __getattr__(self, name: str):  # resource readers and the rest: the real loader's
        return getattr(self._inner, name)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != _PACKAGE:
            return None
        sys.meta_path.remove(self)  # once: the real finders locate the package
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _OfflineImport(spec.loader)
        return spec


def keep_kernels_off_the_hub() -> None:
    """Install the import hook (idempotent; a no-op once bitsandbytes is imported)."""
    if _PACKAGE in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())

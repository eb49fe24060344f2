"""Keep library chatter out of tuneforge's own output: transformers' progress bars ("Loading weights")
and info logs, and the deprecation warnings libraries raise about each other, which a tuneforge user
cannot act on. Called once by each entry point (the CLI, the training and merge subprocesses, the demo).

Environment variables are used so that subprocesses inherit the same quiet. A user who sets
`TRANSFORMERS_VERBOSITY` or `PYTHONWARNINGS` keeps what they asked for.
"""

from __future__ import annotations

import os
import sys
import warnings

from tuneforge.offline import keep_kernels_off_the_hub

# Modules whose deprecation warnings are about each other's APIs, not about anything a user did.
_LIBRARIES = r"(transformers|peft|torch|accelerate|huggingface_hub|gguf|tokenizers)(\.|$)"


def quiet_libraries() -> None:
    keep_kernels_off_the_hub()  # every entry point calls this first: the place for it too
    if not os.environ.get("PYTHONWARNINGS"):
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=_LIBRARIES)
    if os.environ.get("TRANSFORMERS_VERBOSITY"):
        return  # the user asked for transformers' own logging
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"  # read by transformers when imported
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # imported already: tell it directly
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

"""Job subprocess entry: `python -m tuneforge.training --config JOBDIR/train_config.json`.

stdout carries only the JSON-lines event protocol (docs/internals.md); logs go to stderr. SIGTERM and
SIGINT stop training between steps, after a checkpoint, with a `cancelled` event and exit code 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import traceback

from tuneforge.quiet import quiet_libraries


def _clean(value):
    """JSON has no NaN/inf: send them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuneforge.training")
    parser.add_argument("--config", required=True, help="path to train_config.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet_libraries()
    # OpenMP's default wait policy (spin briefly, then sleep) is left alone: on an idle 2-core CPU forcing
    # PASSIVE halved training throughput (84 -> 40-50 tokens/s on the built-in base). On a CPU that other
    # heavy work shares, `OMP_WAIT_POLICY=PASSIVE` in the server's environment can still help.
    # Anything a library prints must not corrupt the protocol: keep the real stdout for events only.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    if int(os.environ.get("RANK", "0")) != 0:  # a torchrun rank other than 0: rank 0 speaks for the run
        protocol.close()
        protocol = open(os.devnull, "w")

    def emit(event: dict) -> None:
        protocol.write(json.dumps(_clean(event)) + "\n")
        protocol.flush()

    stop = {"requested": False}

    def on_signal(signum, frame) -> None:  # noqa: ARG001
        stop["requested"] = True
        print(f"tuneforge.training: signal {signum}; stopping after the current step", file=sys.stderr)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from tuneforge.training.config import ConfigError, TrainConfig
    from tuneforge.training.run import TrainingError, train

    try:
        config = TrainConfig.load(args.config)
        train(config, callbacks=emit, should_stop=lambda: stop["requested"])
    except (ConfigError, TrainingError) as exc:
        emit({"type": "failed", "message": str(exc), "code": getattr(exc, "code", "invalid_config")})
        return 1
    except MemoryError:
        emit({"type": "failed", "code": "out_of_memory", "message": "Out of memory. Lower batch_size or "
              "max_seq_length; the previous checkpoint is intact and `resume` continues from it."})
        return 1
    except Exception as exc:  # an unexpected bug: report it on the protocol, details on stderr
        traceback.print_exc()
        emit({"type": "failed", "code": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

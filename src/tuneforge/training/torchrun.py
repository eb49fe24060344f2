"""`python -m tuneforge.training.torchrun ARGS`: PyTorch's torchrun, unchanged, minus two tracebacks in the
job's log. torchrun re-raises the stop signal the job runner sends (after its ranks have stopped) and a
rank's failure as uncaught exceptions; here the first ends it quietly and the second prints torchrun's
own summary of which rank failed and how."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(argv)
    except SignalException as exc:
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        print(exc.format_msg(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

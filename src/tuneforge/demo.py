"""`make demo`: the main job, end to end. Grows as the platform does.

Today it provisions the built-in base model and answers a chat prompt with it; the fine-tuning, serving
and evaluation steps join as they land.
"""

from __future__ import annotations

from tuneforge.cli.main import app


def main() -> None:
    app(["models", "pull", "smollm2-135m-instruct"], standalone_mode=False)
    app(["models", "check", "smollm2-135m-instruct", "--prompt", "How do I reset my password?",
         "--max-tokens", "40"], standalone_mode=False)
    print("\nNext: `tuneforge --help` lists every command.")


if __name__ == "__main__":
    main()

"""`tuneforge chat -m MODEL` (a streaming terminal chat) and `tuneforge complete -m MODEL -p PROMPT` (the
0.x CLI's `openai api completions.create`). Both run the engine in this process, through the same code
as the HTTP endpoints, so a model answers here exactly as it does through the API."""

from __future__ import annotations

import asyncio
import sys

import typer

from tuneforge.cli.errors import fail, user_error
from tuneforge.serving.params import ServingError

user_error(ServingError)

HELP = "Commands: /reset (forget the conversation), /system TEXT (new system prompt), /exit."


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
    app.command("complete")(complete)


def _engine():
    """An engine in this process that serves what the local server would: bases, aliases, model folders
    and the fine-tuned models in the local store (of OPENAI_API_KEY's project when keys exist)."""
    import os

    from tuneforge.api.auth import DEFAULT_PROJECT
    from tuneforge.serving.engine import InferenceEngine
    from tuneforge.settings import get_settings
    from tuneforge.store.db import Database
    from tuneforge.store.keys import local_caller_project

    settings = get_settings()
    db = Database.from_settings(settings)
    db.init_schema()
    project = local_caller_project(db, os.environ.get("OPENAI_API_KEY"), DEFAULT_PROJECT)
    return InferenceEngine(settings, db=db, max_batch_rows=4, max_queued=4), project


async def _noop_disconnected() -> bool:
    return False


async def _stream_chat(engine, project: str, model: str, messages: list[dict], max_tokens: int | None,
                       temperature: float) -> str:
    from tuneforge.api.schemas.inference import ChatCompletionRequest
    from tuneforge.serving.openai_chat import create_chat

    body = ChatCompletionRequest(model=model, messages=messages, max_tokens=max_tokens,
                                 temperature=temperature, stream=True)
    reply = ""
    async for chunk in await create_chat(engine, body, project, _noop_disconnected):
        for choice in chunk["choices"]:
            piece = choice["delta"].get("content") or ""
            reply += piece
            sys.stdout.write(piece)
            sys.stdout.flush()
            if choice["finish_reason"] == "length":
                sys.stdout.write(" [cut: max tokens reached]")
    sys.stdout.write("\n")
    return reply


def chat(
    model: str = typer.Option(..., "-m", "--model", help="Base model, alias, or fine-tuned id (ft:...)."),
    system: str = typer.Option("", "-s", "--system", help="System prompt."),
    max_tokens: int | None = typer.Option(None, "-M", "--max-tokens", help="Cap per reply (default: none)."),
    temperature: float = typer.Option(0.7, "-t", "--temperature", min=0, max=2),
) -> None:
    """Chat with a model in the terminal: replies stream as they are generated; multi-turn."""
    engine, project = _engine()

    async def run() -> None:
        messages = [{"role": "system", "content": system}] if system else []
        await engine.prepare(model, project)  # fail fast on an unknown model, before the first prompt
        print(f"Chatting with {model}. {HELP}", file=sys.stderr)
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                return
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                return
            if text == "/reset":
                messages = [m for m in messages if m["role"] == "system"]
                print("(conversation cleared)", file=sys.stderr)
                continue
            if text.startswith("/system"):
                messages = [{"role": "system", "content": text[len("/system"):].strip()}]
                print("(new system prompt; conversation cleared)", file=sys.stderr)
                continue
            if text.startswith("/"):
                print(HELP, file=sys.stderr)
                continue
            messages.append({"role": "user", "content": text})
            sys.stdout.write("assistant> ")
            reply = await _stream_chat(engine, project, model, messages, max_tokens, temperature)
            messages.append({"role": "assistant", "content": reply})

    try:
        asyncio.run(run())
    except ServingError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        pass
    finally:
        engine.close()


def complete(
    model: str = typer.Option(..., "-m", "--model", help="Base model, alias, or fine-tuned id."),
    prompt: str = typer.Option(..., "-p", "--prompt", help="The text to continue."),
    max_tokens: int = typer.Option(16, "-M", "--max-tokens", min=1, help="Tokens to generate (OpenAI: 16)."),
    temperature: float = typer.Option(1.0, "-t", "--temperature", min=0, max=2),
    top_p: float = typer.Option(1.0, "-P", "--top-p", min=0, max=1),
    n: int = typer.Option(1, "-n", "--n", min=1, max=128, help="How many completions."),
    stop: list[str] = typer.Option(None, "--stop", help="Stop sequence (repeatable, up to 4)."),
) -> None:
    """Continue PROMPT with MODEL, streaming; prints the prompt and its completion (like `openai api
    completions.create`)."""
    from tuneforge.api.schemas.inference import CompletionRequest
    from tuneforge.serving.openai_completions import create_completion

    engine, project = _engine()
    body = CompletionRequest(model=model, prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                             top_p=top_p, n=n, stop=stop or None, stream=True)

    async def run() -> None:
        texts: dict[int, str] = {}
        chunks = await create_completion(engine, body, project, _noop_disconnected)
        if n == 1:
            sys.stdout.write(prompt)
        async for chunk in chunks:
            for choice in chunk["choices"]:
                texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
                if n == 1:
                    sys.stdout.write(choice["text"])
                    sys.stdout.flush()
        if n > 1:
            for i in sorted(texts):
                print(f"===== Completion {i} =====\n{prompt}{texts[i]}")
        else:
            sys.stdout.write("\n")

    try:
        asyncio.run(run())
    except ServingError as exc:
        fail(exc.message)
    finally:
        engine.close()

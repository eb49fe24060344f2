"""`tuneforge chat -m MODEL` (a streaming terminal chat) and `tuneforge complete -m MODEL -p PROMPT` (the
0.x CLI's `openai api completions.create`). Both are clients of a running server's /v1/chat/completions
and /v1/completions, so a model answers here exactly as it does through the API (keys included)."""

from __future__ import annotations

import sys

import typer

from tuneforge.cli.client import ApiKeyOpt, BaseUrlOpt, Client, make_client

HELP = "Commands: /reset (forget the conversation), /system TEXT (new system prompt), /exit."


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
    app.command("complete")(complete)


def _stream_chat(client: Client, model: str, messages: list[dict], max_tokens: int | None,
                 temperature: float) -> str:
    body = {"model": model, "messages": messages, "temperature": temperature}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    reply = ""
    for chunk in client.stream("chat/completions", body):
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content") or ""
            reply += piece
            sys.stdout.write(piece)
            sys.stdout.flush()
            if choice.get("finish_reason") == "length":
                sys.stdout.write(" [cut: max tokens reached]")
    sys.stdout.write("\n")
    return reply


def _command(text: str, messages: list[dict]) -> list[dict] | None:
    """Apply a /command to the conversation; None when `text` is not one."""
    if text == "/reset":
        print("(conversation cleared)", file=sys.stderr)
        return [m for m in messages if m["role"] == "system"]
    if text.startswith("/system"):
        print("(new system prompt; conversation cleared)", file=sys.stderr)
        return [{"role": "system", "content": text[len("/system"):].strip()}]
    if text.startswith("/"):
        print(HELP, file=sys.stderr)
        return messages
    return None


def chat(
    model: str = typer.Option(..., "-m", "--model", help="Base model, alias, or fine-tuned id (ft:...)."),
    system: str = typer.Option("", "-s", "--system", help="System prompt."),
    max_tokens: int | None = typer.Option(None, "-M", "--max-tokens", help="Cap per reply (default: none)."),
    temperature: float = typer.Option(0.7, "-t", "--temperature", min=0, max=2),
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Chat with a model served by `tuneforge serve`: replies stream as they are generated; multi-turn."""
    client = make_client(base_url, api_key, timeout=600)
    try:
        # Fail fast on no server or a bad key before the first prompt (an unknown model fails on the first
        # message: the server, not this client, decides which ids it serves).
        client.get("models", params={"limit": 1})
        messages = [{"role": "system", "content": system}] if system else []
        print(f"Chatting with {model}. {HELP}", file=sys.stderr)
        while True:
            try:
                text = input("you> ").strip()
            except EOFError:
                return
            if not text:
                continue
            if text in ("/exit", "/quit"):
                return
            changed = _command(text, messages)
            if changed is not None:
                messages = changed
                continue
            messages.append({"role": "user", "content": text})
            sys.stdout.write("assistant> ")
            reply = _stream_chat(client, model, messages, max_tokens, temperature)
            messages.append({"role": "assistant", "content": reply})
    except KeyboardInterrupt:
        pass
    finally:
        client.close()


def complete(
    model: str = typer.Option(..., "-m", "--model", help="Base model, alias, or fine-tuned id."),
    prompt: str = typer.Option(..., "-p", "--prompt", help="The text to continue."),
    max_tokens: int = typer.Option(16, "-M", "--max-tokens", min=1, help="Tokens to generate (OpenAI: 16)."),
    temperature: float = typer.Option(1.0, "-t", "--temperature", min=0, max=2),
    top_p: float = typer.Option(1.0, "-P", "--top-p", min=0, max=1),
    n: int = typer.Option(1, "-n", "--n", min=1, max=128, help="How many completions."),
    stop: list[str] = typer.Option(None, "--stop", help="Stop sequence (repeatable, up to 4)."),
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Continue PROMPT with MODEL on a running server, streaming; prints the prompt and its completion
    (like `openai api completions.create`)."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature,
            "top_p": top_p, "n": n}
    if stop:
        body["stop"] = stop
    client = make_client(base_url, api_key, timeout=600)
    texts: dict[int, str] = {}
    try:
        if n == 1:
            sys.stdout.write(prompt)
        for chunk in client.stream("completions", body):
            for choice in chunk.get("choices") or []:
                texts[choice["index"]] = texts.get(choice["index"], "") + (choice.get("text") or "")
                if n == 1:
                    sys.stdout.write(choice.get("text") or "")
                    sys.stdout.flush()
    finally:
        client.close()
    if n > 1:
        for i in sorted(texts):
            print(f"===== Completion {i} =====\n{prompt}{texts[i]}")
    else:
        sys.stdout.write("\n")

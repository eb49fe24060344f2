"""Build a small tool-calling set for the Harbor Bikes support assistant, in OpenAI's chat fine-tuning
format. Run from the repo root:

    python examples/build_tool_dataset.py

Writes `support_tools_train.jsonl` and `support_tools_heldout.jsonl`. Each line has the three support tools
in `tools` and a customer request; the assistant either calls the right tool with the values from the
request (`tool_calls`, arguments as a JSON string) or, for a question no tool answers, replies in text. The
held-out requests use other wordings and other order numbers, e-mails, bikes and dates than the training
ones, so a model can only get them right by learning the pattern, not the lines.
`benchmarks/tool_calls.py` measures the base and a fine-tune on the held-out file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
SYSTEM = "You are the customer support assistant of Harbor Bikes. Answer briefly and accurately."

TOOLS = [
    {"type": "function", "function": {
        "name": "get_order_status", "description": "Look up where an order is.",
        "parameters": {"type": "object", "properties": {"order_number": {"type": "string"}},
                       "required": ["order_number"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "reset_password", "description": "Send a password reset link.",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"}},
                       "required": ["email"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "book_service", "description": "Book a workshop appointment for a bike on a date.",
        "parameters": {"type": "object", "properties": {
            "bike": {"type": "string", "enum": ["City", "Trail", "Fold"]},
            "date": {"type": "string", "description": "YYYY-MM-DD"}},
            "required": ["bike", "date"], "additionalProperties": False}}},
]

# (wording, tool); {order}, {email}, {bike} and {date} are filled in per row.
TRAIN_WORDINGS = [
    ("Where is my order {order}?", "get_order_status"),
    ("Can you check the status of order {order} please?", "get_order_status"),
    ("My bike from order {order} hasn't arrived yet. Any news?", "get_order_status"),
    ("Has order {order} shipped?", "get_order_status"),
    ("I forgot my password. My account email is {email}.", "reset_password"),
    ("Please reset the password for {email}.", "reset_password"),
    ("I can't log in, send a reset link to {email}", "reset_password"),
    ("Locked out of my account ({email}). Help!", "reset_password"),
    ("My Harbor {bike} needs a service, can I come in on {date}?", "book_service"),
    ("I'd like to bring my {bike} to the workshop on {date}.", "book_service"),
    ("Book a service for my Harbor {bike}, {date} works for me.", "book_service"),
    ("The brakes of my {bike} squeak. Is {date} free for a check?", "book_service"),
]
HELDOUT_WORDINGS = [
    ("Any update on {order}? It's been a week.", "get_order_status"),
    ("Tracking info for order number {order}, please.", "get_order_status"),
    ("What's happening with my order {order}?", "get_order_status"),
    ("I need a new password, the account is {email}.", "reset_password"),
    ("Reset my login please: {email}", "reset_password"),
    ("Password not working for {email}, can you send a link?", "reset_password"),
    ("Could you schedule a workshop visit for my {bike} on {date}?", "book_service"),
    ("My Harbor {bike}'s motor makes a noise. Appointment on {date}?", "book_service"),
    ("Please set up a {bike} service on {date}.", "book_service"),
]
# Questions no tool answers: the assistant replies in text, with the support set's facts.
TRAIN_CHAT = [
    ("What are your support hours?", "Mon-Fri 9:00-18:00 and Sat 10:00-16:00 Pacific Time; closed Sunday."),
    ("Do you ship to Europe?", "We ship to the US and Canada only."),
    ("How long is the warranty?", "The frame has a 5-year warranty; the motor and battery have 2 years."),
    ("Can I pay with PayPal?", "Yes: we accept Visa, Mastercard and PayPal."),
    ("Thanks, that's all!", "You're welcome! Enjoy your ride."),
    ("What is your return policy?", "Returns are accepted within 30 days of delivery, unused and in the "
                                    "original packaging; return shipping is free."),
]
HELDOUT_CHAT = [
    ("Are you open on Saturdays?", "Yes, Saturday 10:00-16:00 Pacific Time."),
    ("Is the battery covered by the warranty?", "Yes, the motor and battery have a 2-year warranty."),
    ("Which payment methods do you take?", "Visa, Mastercard and PayPal."),
    ("Hello!", "Hello! How can I help you today?"),
]
NAMES = ["anna", "ben", "chen", "dara", "emil", "fatima", "goran", "hana", "ivan", "julia", "kofi", "lena",
         "mateo", "nora", "omar", "priya", "quinn", "rosa", "sven", "tariq", "uma", "victor", "wei", "yara"]
DOMAINS = ["example.com", "mail.example", "post.example"]
BIKES = ["City", "Trail", "Fold"]


def _values(rng: random.Random, names: list[str]) -> dict:
    return {"order": f"HB-{rng.randrange(10000, 99999)}",
            "email": f"{rng.choice(names)}.{rng.choice(names)}@{rng.choice(DOMAINS)}",
            "bike": rng.choice(BIKES),
            "date": f"2027-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"}


def _arguments(tool: str, v: dict) -> dict:
    return {"get_order_status": {"order_number": v["order"]}, "reset_password": {"email": v["email"]},
            "book_service": {"bike": v["bike"], "date": v["date"]}}[tool]


def call_row(wording: str, tool: str, v: dict, n: int) -> dict:
    call = {"id": f"call_{n:04d}", "type": "function",
            "function": {"name": tool, "arguments": json.dumps(_arguments(tool, v))}}
    return {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": wording.format(**v)},
                         {"role": "assistant", "tool_calls": [call]}],
            "tools": TOOLS}


def chat_row(question: str, answer: str) -> dict:
    return {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question},
                         {"role": "assistant", "content": answer}],
            "tools": TOOLS}


def build(wordings, chat, per_wording: int, names: list[str], seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = [call_row(w, tool, _values(rng, names), i * per_wording + k)
            for i, (w, tool) in enumerate(wordings) for k in range(per_wording)]
    rows += [chat_row(q, a) for q, a in chat]
    rng.shuffle(rows)
    return rows


def main() -> None:
    # Held-out rows use names the training rows never saw (the second half of NAMES).
    train = build(TRAIN_WORDINGS, TRAIN_CHAT, 4, NAMES[:12], seed=7)
    heldout = build(HELDOUT_WORDINGS, HELDOUT_CHAT, 4, NAMES[12:], seed=11)
    for name, rows in (("support_tools_train.jsonl", train), ("support_tools_heldout.jsonl", heldout)):
        (HERE / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
        print(f"wrote {len(rows)} rows to examples/{name}")


if __name__ == "__main__":
    main()

"""Ids and rows the evaluation fixtures and tests share."""

FT_ID = "ft:tiny-llama:personal:support:evalkit1"
SYSTEM = "You are the support bot of Harbor Bikes."
ROWS = [
    ("How long is the warranty?", "Two years on the frame."),
    ("保修期多长？", "车架保修两年。"),
    ("Do you ship abroad?", "Yes, to the EU."),
]

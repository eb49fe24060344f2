"""`tuneforge migrate`: bring fine-tuning files, jobs and model ids over from an OpenAI-compatible API.

An API client like evaluation/: it talks to the source and to the target tuneforge with the `openai`
SDK and imports nothing of the server. `source` reads the source's jobs, `plan` decides what to do,
`files` copies files (reusing identical ones by content hash), `jobs` re-creates jobs and their aliases
on the target, `capture` keeps the source models' answers for a parity eval, `run` drives it all and
prints the outcome.
"""

# The CLI's defaults for `--capture` (here, so that `tuneforge --help` imports no SDK).
CAPTURE_VALIDATION = "validation"  # `--capture validation`: each job's own validation file
CAPTURE_MAX_TOKENS = 256

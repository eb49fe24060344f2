"""`tuneforge migrate`: bring fine-tuning files, jobs and model ids over from an OpenAI-compatible API.

An API client like evaluation/: it talks to the source and to the target tuneforge with the `openai`
SDK and imports nothing of the server. `source` reads the source's jobs, `plan` decides what to do,
`files` copies files (reusing identical ones by content hash), `jobs` re-creates jobs and their aliases
on the target, `run` drives it all and prints the outcome.
"""

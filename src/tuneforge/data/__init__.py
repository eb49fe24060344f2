"""Datasets: formats, streaming validation, `prepare`, conversion (docs/data.md).

Modules: `io` (bounded-memory line reading, `read_examples`), `rows` (the chat/legacy/DPO row checks),
`findings` (stable finding codes), `validate` (`validate_file`), `stats` + `throughput` (token statistics,
training-time estimate), `readers` + `convert` + `threads` (CSV/XLSX/JSON/alpaca/sharegpt/support threads
to chat), `legacy_prepare` + `chat_prepare` + `prepare` (`tuneforge prepare`), `encode` (the trainer's
tokenization and loss mask).
"""

"""Evaluation: does a fine-tune beat its base, as served? An OpenAI API client: greedy answers from
/v1/chat/completions scored by exact match and ROUGE-L, loss/perplexity and token accuracy of the reference
answers from /v1/completions (echo + logprobs) where the server gives them, a terminal table and an HTML
report.

Entry point: `tuneforge.evaluation.run.evaluate`. Nothing is imported here, so the CLI starts fast.
"""

"""Evaluation: does a fine-tune beat its base? Loss/perplexity and token accuracy on the reference
answers, generated answers scored by exact match and ROUGE-L, a terminal table and an HTML report.

Entry point: `tuneforge.evaluation.run.evaluate`. Nothing is imported here, so the CLI starts fast
(torch loads only when an evaluation runs).
"""

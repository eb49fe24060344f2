"""Ids under which the serving fixtures register their fine-tuned models (shared by conftest and tests)."""

FT_ID = "ft:tiny-llama:personal:support:abcd1234"
FT2_ID = "ft:tiny-llama:personal:other:efgh5678"
FULL_ID = "ft:tiny-llama:personal:full:ijkl9012"

"""Base-model catalog, aliases, provisioning and loading."""

from tuneforge.models.catalog import BaseModelSpec, UnknownModelError, all_bases, resolve_base
from tuneforge.models.loading import base_model_folder, load_base_model, load_tokenizer
from tuneforge.models.provision import ProvisionError, provision

__all__ = [
    "BaseModelSpec",
    "ProvisionError",
    "UnknownModelError",
    "all_bases",
    "base_model_folder",
    "load_base_model",
    "load_tokenizer",
    "provision",
    "resolve_base",
]

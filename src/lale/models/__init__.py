"""Networks: the LALE family and the baselines, built by name through one registry."""

from lale.models.registry import (
    UnknownModelError,
    create_model,
    get_entry,
    list_models,
    register_model,
)

__all__ = ["UnknownModelError", "create_model", "get_entry", "list_models", "register_model"]

"""Networks: the LALE family and the baselines, built by name through one registry."""

# Importing the model modules registers their models (baselines first, then LALE).
from lale.models import baselines, network  # noqa: F401
from lale.models.registry import (
    UnknownModelError,
    create_model,
    get_entry,
    list_models,
    register_model,
)

__all__ = ["UnknownModelError", "create_model", "get_entry", "list_models", "register_model"]

"""Networks: the LALE family, baselines and frontier models, built by name through one registry."""

# Importing the model modules registers their models (baselines, LALE, then the frontier);
# timm_lale registers the LALE encoders with timm too.
from lale.models import baselines, frontier, network, timm_lale  # noqa: F401
from lale.models.registry import (
    UnknownModelError,
    create_model,
    get_entry,
    list_models,
    register_model,
)

__all__ = ["UnknownModelError", "create_model", "get_entry", "list_models", "register_model"]

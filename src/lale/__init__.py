"""lale: the LALE land-cover segmentation networks and the toolkit around them.

>>> import lale
>>> model = lale.create_model("lale_t", num_classes=7, in_channels=3)
"""

from lale.models import UnknownModelError, create_model, list_models

__version__ = "0.1.0"
__all__ = ["UnknownModelError", "__version__", "create_model", "list_models"]

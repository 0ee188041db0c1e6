"""Model implementations: shared blocks, one small module per architecture, and the model_type registry."""

from audioclf.models.registry import SUPPORTED_MODEL_TYPES, build_model, model_class

__all__ = ["SUPPORTED_MODEL_TYPES", "build_model", "model_class"]

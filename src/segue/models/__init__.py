"""Scorers: every model turns histories into scores over the whole catalogue; ranking lives elsewhere."""

from segue.models.base import MODEL_NAMES, Scorer, create_model, load_model, model_class

__all__ = ["MODEL_NAMES", "Scorer", "create_model", "load_model", "model_class"]

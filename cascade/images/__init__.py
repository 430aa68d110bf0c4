"""Saved images: the service the gateway calls (objects + index), its HTTP responses, the orphan sweep."""

from __future__ import annotations

from cascade.images.service import ImageService, NewImage, SaveOutcome

__all__ = ["ImageService", "NewImage", "SaveOutcome"]

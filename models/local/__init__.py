"""CPU-only models that need no weights (the Pillow procedural generator)."""

"""Cascade core: the pieces of the gateway that need no Ray (types, errors, fallback, storage)."""

"""hookdiff: how steering vectors act inside a network."""

from hookdiff import errors

__all__ = ["errors"]
__version__ = "0.1.0"

"""The errors ``tinynet.nn`` and ``tinynet.optim`` raise, under ``tn.nn`` too. They live in
``tinynet.errors`` with the others; this module only re-exports them."""

from tinynet.errors import ClassIndexError, StateDictError, ValueRangeError

__all__ = ["ClassIndexError", "StateDictError", "ValueRangeError"]

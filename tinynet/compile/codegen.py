"""Placeholder: filled in below."""
from typing import Any


def build(program: Any) -> Any:
    return None

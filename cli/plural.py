"""Counts in messages read as English: "1 checkpoint", "2 checkpoints", "0 problems"."""

from __future__ import annotations


def quantity(number: int, noun: str, plural: str | None = None) -> str:
    """``number`` and ``noun``, the noun in the plural (``noun + "s"`` unless given) unless
    the number is one."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"

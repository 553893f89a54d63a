"""What the command line prints of stored or user-given text: shown, never obeyed.

Case data reaches an operator's terminal through `disputes replay`, `audit verify`, the
reports, the mediator list and error messages. Text stored before the input checks of
workflow/text.py (or written by someone with access to the database) may hold terminal
control sequences (ESC, NUL, carriage returns, C1 controls), bidi controls that reorder what
the operator reads, or rich markup ("[red]", "[link=...]") that the console would obey.

Two layers keep them out:

* every value from a case, a mediator, a desk file or an error goes through :func:`shown`
  (inside markup) or :func:`plain` (a table cell): control and format characters become
  visible escapes such as ``\\x1b`` or ``\\u202e``, and markup is escaped so that it prints
  as written;
* the consoles are :class:`SafeConsole`, which escape control characters in whatever they
  render (newline and tab excepted), so a value that missed the first layer still cannot
  drive the terminal.

Zero-width joiners and non-joiners are left as they are: scripts and emoji need them, and
they neither move nor hide text.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

# Categories never printed as themselves: controls, format characters (bidi controls, zero-width
# spaces...), unpaired surrogates (they cannot even be encoded), line and paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def _unsafe(ch: str, keep: str) -> bool:
    return ch not in keep and ch not in _JOINERS and unicodedata.category(ch) in _ESCAPED_CATEGORIES


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_controls(text: str, *, keep: str = "") -> str:
    """``text`` with every control, format and separator character (but those in ``keep``)
    written as a visible escape."""
    if text.isprintable():
        return text  # the common case: isprintable() is False for every character escaped below
    return "".join(_escaped(ch) if _unsafe(ch, keep) else ch for ch in text)


def shown(value: Any) -> str:
    """A value to put inside console markup: one line, escaped, markup-free."""
    return escape(escape_controls(str(value)))


def plain(value: Any) -> Text:
    """A value as a table cell: never read as markup; newlines and tabs kept, other controls escaped."""
    return Text(escape_controls(str(value), keep="\n\t"))


class SafeConsole(Console):
    """A rich console that escapes control characters in every string it renders (the
    second layer: our own markup still styles, a raw ESC or NUL never reaches the terminal).
    Emoji codes such as ``:warning:`` are not expanded: the command line prints none."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("emoji", False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(escape_controls(text, keep="\n\t"), **kwargs)

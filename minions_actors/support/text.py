"""Text from a store file, made safe to print: escaped control characters, and values that
are not valid UTF-8 decoded with their bad bytes as ``\\xNN`` escapes (and marked)."""

from __future__ import annotations

__all__ = ["NotUtf8", "not_utf8_columns", "printable", "tolerant_text"]


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``, ``\\n``, ``\\u202e``).

    Stored strings (paths, class names, workflow ids and errors) come from applications:
    printed raw, an escape sequence in one could retitle, clear or rewrite the operator's
    terminal.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


class NotUtf8(str):
    """A stored TEXT value that was not valid UTF-8, with each bad byte as a ``\\xNN`` escape
    (a ``str`` subclass, so readers can name the rows and columns that hold one)."""


def tolerant_text(data: bytes) -> str:
    """A sqlite3 ``text_factory`` that never fails: valid UTF-8 as ``str``, anything else as
    :class:`NotUtf8` (sqlite3's own decoding error quotes the raw bytes, escapes included)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return NotUtf8(data.decode("utf-8", "backslashreplace"))


def not_utf8_columns(names: tuple[str, ...], row: tuple[object, ...]) -> list[str]:
    """The names of the first columns of ``row`` (read with :func:`tolerant_text`) that held
    text that is not valid UTF-8 (``names`` may name only the first few)."""
    return [name for name, value in zip(names, row, strict=False) if isinstance(value, NotUtf8)]

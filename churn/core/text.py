"""Data shown on a terminal is shown, never obeyed: no Rich markup, no escape sequences.

Instance ids, reasons and versions come from users and producers: ``[bold red]fake[/]`` must print as those
characters (Rich would parse it as markup, and fail on ``[/x]``), and an escape sequence (``\\x1b[2J``) as its
escaped text, not as a command to the terminal.
"""

from __future__ import annotations


def inert(value: object) -> str:
    """``value`` as text with every non-printable character escaped (``\\x1b``, ``\\n``, ``\\u200b`` …)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def plain(value: object):
    """``value`` as a Rich ``Text``: printed as it is, never parsed as markup."""
    from rich.text import Text

    return Text(inert(value))

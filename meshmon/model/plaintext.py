"""Text from the network squeezed onto one line of plain text (terminals, logs, mail).

A hostname or tag may hold control characters: an ANSI escape that recolours or rewrites
a terminal, a line break that forges a log line or an email header, a right-to-left
override that makes one name look like another. Such text is made harmless here before
it is printed or placed in a line.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """`text` with every non-printable character (controls, ESC, line breaks, format
    characters such as U+202E) turned into a space, and runs of spaces collapsed."""
    if text.isprintable() and "  " not in text and text == text.strip():
        return text  # the common case, without building a new string
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(cleaned.split())

"""Where each key of a TOML document is written, so config errors can name a line.

tomllib gives values, not positions. This scanner walks text that tomllib has already
accepted and records the line of every table header, key and array element under the same
path pydantic reports: `("notifiers", 1, "url")` for the `url` of the second
`[[notifiers]]`, `("installer", "planned", 0, "src")` inside an inline table in an array.
"""

from __future__ import annotations

import re
import tomllib
from bisect import bisect_right

TomlPath = tuple[str | int, ...]

BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
SCALAR_END = frozenset(",]}#\r\n")


def key_lines(text: str) -> dict[TomlPath, int]:
    """The 1-based line of every table, key and array element of valid TOML `text`."""
    return _Scanner(text).scan()


def line_of(lines: dict[TomlPath, int], path: TomlPath) -> int | None:
    """The line of `path`, else of its nearest written ancestor (a missing key's table)."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


class _Scanner:
    """One pass over the text; assumes it is valid TOML (tomllib said so)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[TomlPath, int] = {}
        self.array_tables: dict[TomlPath, int] = {}
        """each `[[path]]` seen → how many elements it has so far"""
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return bisect_right(self.line_starts, pos)

    def scan(self) -> dict[TomlPath, int]:
        table: TomlPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            if self.text[self.pos] == "[":
                table = self.header()
            else:
                self.key_value(table)

    # ------------------------------------------------------------------ structure
    def header(self) -> TomlPath:
        start = self.pos
        is_array = self.text.startswith("[[", start)
        self.pos += 2 if is_array else 1
        keys = self.key()
        self.skip_blank()
        self.pos += 2 if is_array else 1
        if is_array:
            parent = self.resolve(keys[:-1])
            array = (*parent, keys[-1])
            index = self.array_tables.get(array, 0)
            self.array_tables[array] = index + 1
            self.lines.setdefault(array, self.line(start))
            table = (*array, index)
        else:
            table = self.resolve(keys)
        self.record(table, start)
        return table

    def resolve(self, keys: list[str]) -> TomlPath:
        """A header's keys as a path, with the current index of each array of tables."""
        path: TomlPath = ()
        for key in keys:
            path += (key,)
            if path in self.array_tables:
                path += (self.array_tables[path] - 1,)
        return path

    def record(self, path: TomlPath, pos: int) -> None:
        """Note `path` at `pos`; ancestors not written anywhere yet get the same line."""
        line = self.line(pos)
        self.lines[path] = line
        for end in range(1, len(path)):
            self.lines.setdefault(path[:end], line)

    def key_value(self, table: TomlPath) -> None:
        start = self.pos
        path = table + tuple(self.key())
        self.record(path, start)
        self.skip_blank()
        self.pos += 1  # "="
        self.skip_blank()
        self.value(path)

    def value(self, path: TomlPath) -> None:
        char = self.text[self.pos]
        if char == "{":
            self.pos += 1
            while not self.closes("}"):
                self.key_value(path)
        elif char == "[":
            self.pos += 1
            index = 0
            while not self.closes("]"):
                self.record((*path, index), self.pos)
                self.value((*path, index))
                index += 1
        elif char in "\"'":
            self.string()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in SCALAR_END:
                self.pos += 1

    def closes(self, bracket: str) -> bool:
        """Skip blanks and separating commas; True (and step over it) at `bracket`."""
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return True
            char = self.text[self.pos]
            if char == bracket:
                self.pos += 1
                return True
            if char != ",":
                return False
            self.pos += 1

    # ------------------------------------------------------------------ tokens
    def key(self) -> list[str]:
        """A dotted key (`a."b.c".d`) as its parts."""
        parts = []
        while True:
            self.skip_blank()
            if self.text[self.pos] in "\"'":
                start = self.pos
                self.string()
                parts.append(tomllib.loads(f"k = {self.text[start:self.pos]}")["k"])
            else:
                match = BARE_KEY_RE.match(self.text, self.pos)
                if match is None:
                    raise ValueError(f"no key at offset {self.pos}")
                parts.append(match.group())
                self.pos = match.end()
            self.skip_blank()
            if self.pos >= len(self.text) or self.text[self.pos] != ".":
                return parts
            self.pos += 1

    def string(self) -> None:
        """Step over one string of any of the four kinds."""
        text = self.text
        quote = text[self.pos]
        if text.startswith(quote * 3, self.pos):
            end = self.find_close(quote * 3, self.pos + 3, escapes=quote == '"')
            while end < len(text) and text[end] == quote:  # `""""a""""`: quotes end the body
                end += 1
            self.pos = end
        else:
            self.pos = self.find_close(quote, self.pos + 1, escapes=quote == '"')

    def find_close(self, closing: str, pos: int, escapes: bool) -> int:
        """The offset just past `closing`, skipping backslash escapes in basic strings."""
        text = self.text
        while pos < len(text):
            if escapes and text[pos] == "\\":
                pos += 2
            elif text.startswith(closing, pos):
                return pos + len(closing)
            else:
                pos += 1
        return pos

    def skip_blank(self, newlines: bool = False) -> None:
        """Skip spaces, tabs and comments (and line breaks when `newlines`)."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self.pos += 1
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

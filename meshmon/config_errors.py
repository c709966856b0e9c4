"""Config errors a person can act on: each names its TOML path and the line of the file,
says what type was expected and what was given, and suggests the closest known key."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from datetime import date, time
from types import UnionType
from typing import Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from meshmon.toml_lines import TomlPath, key_lines, line_of


class KeyProblem(ValueError):
    """Raised by a validator about one key below its model, so the error names that key."""

    def __init__(self, loc: TomlPath, message: str) -> None:
        super().__init__(message)
        self.loc = loc


class ConfigProblem(NamedTuple):
    """One error: its TOML path, what is wrong, and the line of the file (when known)."""

    path: str
    message: str
    line: int | None = None


class ConfigError(Exception):
    """A config that cannot be used; `errors` lists its ConfigProblems."""

    def __init__(self, source: str,
                 errors: Sequence[ConfigProblem | tuple[str, str]]) -> None:
        self.source = source
        self.errors = [ConfigProblem(*error) for error in errors]
        lines = "\n".join(f"  {problem_text(e)}" for e in self.errors)
        super().__init__(f"{source}: {len(errors)} error(s)\n{lines}")


def problem_text(problem: ConfigProblem) -> str:
    """`line 3: mqtt.port: expected an integer, got a string`."""
    where = f"line {problem.line}: " if problem.line else ""
    return f"{where}{problem.path}: {problem.message}"


SYNTAX_LINE_RE = re.compile(r"\(at line (\d+), column \d+\)")
EXPECTED = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a string (in quotes)",
    "list_type": "expected an array [...]",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
}


def _toml_type(value: Any) -> str:
    """How TOML calls the type of a parsed value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    for kind, name in ((int, "an integer"), (float, "a number"),
                       (str, "a string"), (list, "an array"), (dict, "a table"),
                       (date, "a date"), (time, "a time")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _type_message(error: ErrorDetails) -> str:
    given = error["input"]
    message = f"{EXPECTED[error['type']]}, got {_toml_type(given)}"
    if isinstance(given, str) and error["type"] in ("int_type", "float_type"):
        try:
            float(given)
        except ValueError:
            pass
        else:
            message += f" (write {given.strip()} without quotes)"
    return message


def suggestion(key: str, known: Sequence[str]) -> str:
    """`; did you mean 'host'?` for the closest known name ('' when none is close)."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds (directly or as list items), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _section_at(root: type[BaseModel], loc: TomlPath) -> type[BaseModel] | None:
    """The model that validates the table at `loc` (list indices are stepped over)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        model = _model_in(field.annotation) if field else None
    return model


def _is_union(annotation: Any) -> bool:
    """A field that takes one of several types (not just `X | None`): pydantic names the
    member it tried after the field in an error's location."""
    if get_origin(annotation) not in (Union, UnionType):
        return False
    return len([a for a in get_args(annotation) if a is not type(None)]) > 1


def _toml_loc(root: type[BaseModel], loc: TomlPath) -> TomlPath:
    """An error's location as a TOML path: without the union members pydantic adds
    (`allow_anonymous.bool`, `allow_anonymous.literal['auto']` → `allow_anonymous`)."""
    model: type[BaseModel] | None = root
    out: list[str | int] = []
    skip = False
    for part in loc:
        if skip:
            skip = False
            continue
        out.append(part)
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        skip = field is not None and _is_union(field.annotation)
        model = _model_in(field.annotation) if field else None
    return tuple(out)


def _unknown_key_message(root: type[BaseModel], loc: TomlPath) -> str:
    section = _section_at(root, loc[:-1])
    known = list(section.model_fields) if section else []
    key = str(loc[-1])
    hint = suggestion(key, known)
    if not hint and known:
        where = ".".join(str(p) for p in loc[:-1]) or "the top level"
        hint = f"; {where} has: {', '.join(known)}"
    return f"unknown key {key!r}{hint}"


def _problem(error: ErrorDetails, root: type[BaseModel],
             lines: dict[TomlPath, int]) -> ConfigProblem:
    """One pydantic error as a ConfigProblem named by TOML path and line."""
    loc: TomlPath = _toml_loc(root, tuple(error["loc"]))
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, KeyProblem):
        loc += cause.loc
        message = str(cause)
    elif error["type"] == "extra_forbidden":
        message = _unknown_key_message(root, loc)
    elif error["type"] in EXPECTED:
        message = _type_message(error)
    else:
        message = error["msg"].removeprefix("Value error, ")
    path = ".".join(str(p) for p in loc) or "(root)"
    return ConfigProblem(path, message, line_of(lines, loc))


def syntax_problem(exc: tomllib.TOMLDecodeError) -> ConfigProblem:
    """A TOML syntax error, with the line tomllib names in its message."""
    at = SYNTAX_LINE_RE.search(str(exc))
    return ConfigProblem("(syntax)", str(exc), int(at.group(1)) if at else None)


def located_problems(exc: ValidationError, root: type[BaseModel],
                     text: str) -> list[ConfigProblem]:
    """The errors of validating TOML `text` against `root`, in the order of the file."""
    try:
        lines = key_lines(text)
    except (IndexError, ValueError):  # a scanner slip must not hide the errors themselves
        lines = {}
    merged: dict[tuple[str, int | None], list[str]] = {}
    for problem in (_problem(error, root, lines) for error in exc.errors()):
        # one value that fits no member of a union: one problem saying what each wants
        messages = merged.setdefault((problem.path, problem.line), [])
        if problem.message not in messages:
            messages.append(problem.message)
    return sorted((ConfigProblem(path, "; or ".join(messages), line)
                   for (path, line), messages in merged.items()),
                  key=lambda p: (p.line or 0, p.path))

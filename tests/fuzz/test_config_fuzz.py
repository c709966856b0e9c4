"""Any TOML → a `Config`, or a `ConfigError` whose every error names a TOML path of the
document (or says it is about the syntax, the file or the whole config) — never another
exception. Documents are generated from the config's own models (every section and key,
with values of the right type near their limits, of the wrong type, and unknown keys),
and as raw random text and bytes."""

from __future__ import annotations

import datetime
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from meshmon.config import Config, ConfigError, load, parse
from tests.fuzz import scaled

SPECIAL_PATHS = ("(syntax)", "(file)", "(root)")
MAX_KEYS = 5
"""keys drawn per table: enough to combine a few, few enough to draw quickly"""
KEYS = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)


def toml_values() -> st.SearchStrategy[Any]:
    """Any TOML value: every scalar type TOML has, arrays and tables."""
    scalars = st.one_of(
        st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
        st.dates(), st.times(), st.datetimes(),
        st.datetimes(timezones=st.just(datetime.UTC)),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=6)


def _bounds(field: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge | annotated_types.Gt):
            low = float(getattr(meta, "ge", getattr(meta, "gt", 0)))
        if isinstance(meta, annotated_types.Le | annotated_types.Lt):
            high = float(getattr(meta, "le", getattr(meta, "lt", 0)))
    return low, high


def _numbers(field: FieldInfo, integral: bool) -> st.SearchStrategy[Any]:
    """Numbers at, just inside and just outside the field's limits, and any others."""
    low, high = _bounds(field)
    edges = [e + d for e in (low, high) if e is not None for d in (-1, 0, 1)]
    edges = [int(e) for e in edges] if integral else edges + [e + 0.5 for e in edges]
    anything = st.integers() if integral else st.floats(allow_nan=True, allow_infinity=True)
    return st.one_of(st.sampled_from(edges or [0]), anything)


def for_annotation(annotation: Any, field: FieldInfo) -> st.SearchStrategy[Any]:
    """Values of the type a config field declares (unions: any member)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return for_annotation(args[0], field)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(for_annotation(a, field) for a in args if a is not type(None)))
    if origin is list:
        return st.lists(for_annotation(args[0], field), max_size=2)
    if origin is dict:
        return st.dictionaries(KEYS, st.text(max_size=20), max_size=3)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return tables(annotation)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return _numbers(field, integral=True)
    if annotation is float:
        return st.one_of(_numbers(field, integral=False), _numbers(field, integral=True))
    if annotation is str:
        return st.one_of(st.text(max_size=40), st.sampled_from(
            ["", "http://127.0.0.1:1/x", "https://example.org/", "ntfy://topic", "hook",
             "mail@example.org", "*", "../../etc/passwd", "\u202e", "a" * 300]))
    raise NotImplementedError(f"no strategy for {annotation!r}")


@st.composite
def tables(draw: st.DrawFn, model: type[BaseModel]) -> dict[str, Any]:
    """A TOML table for `model`: some of its keys with values of their type or of any
    type, sometimes an unknown key."""
    table: dict[str, Any] = {}
    names = sorted(model.model_fields)
    for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=MAX_KEYS)):
        field = model.model_fields[name]
        if draw(st.integers(0, 5)) == 0:
            table[name] = draw(toml_values())
        else:
            table[name] = draw(for_annotation(field.annotation, field))
    if draw(st.integers(0, 6)) == 0:
        table[draw(KEYS)] = draw(toml_values())
    return table


def _tomlable(value: Any) -> bool:
    try:
        tomli_w.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def resolves(parts: list[str], node: Any) -> bool:
    """Whether dotted `parts` lead through the document (keys may hold dots themselves);
    the last part may be absent (a required key that is missing)."""
    if not parts:
        return True
    if isinstance(node, list):
        return parts[0].isdigit() and int(parts[0]) < len(node) and resolves(
            parts[1:], node[int(parts[0])])
    if not isinstance(node, dict):
        return False
    for n in range(1, len(parts) + 1):
        key = ".".join(parts[:n])
        if key in node and resolves(parts[n:], node[key]):
            return True
    return len(parts) == 1  # a missing key directly below an existing table


def assert_names_toml_paths(error: ConfigError, document: dict[str, Any] | None) -> None:
    assert error.errors, error
    for problem in error.errors:
        path, message = problem[0], problem[1]
        assert isinstance(message, str) and message, problem
        if path in SPECIAL_PATHS:
            continue
        assert path and document is not None, problem
        assert resolves(path.split("."), document), (problem, document)


def outcome(text: str, document: dict[str, Any] | None) -> Config | ConfigError:
    try:
        return parse(text, "fuzz.toml")
    except ConfigError as exc:
        assert_names_toml_paths(exc, document)
        return exc


@settings(max_examples=scaled(200))
@given(tables(Config).filter(_tomlable))
def test_documents_from_the_schema_give_a_config_or_errors_naming_their_paths(
    document: dict[str, Any]
) -> None:
    result = outcome(tomli_w.dumps(document), document)
    if isinstance(result, Config):
        # what was given is what the collector runs with
        for section, values in document.items():
            if isinstance(values, dict) and isinstance(getattr(result, section), BaseModel):
                assert set(values) <= set(type(getattr(result, section)).model_fields)


SECTION_NAMES = sorted(Config.model_fields)
KEY_NAMES = sorted({
    key for field in Config.model_fields.values() for model in [field.annotation]
    if isinstance(model, type) and issubclass(model, BaseModel) for key in model.model_fields
})
TOML_BITS = ["=", " = ", ".", "[", "]", "{", "}", ",", '"', "'", "'" * 3, '"' * 3, "#", "\\",
             "\t", "\r\n", "\n", "true", "nan", "-inf", "1_000", "0x1F", "1979-05-27T07:32:00Z",
             "07:32:00", "1e400", "-0"]


def tomlish_text() -> st.SearchStrategy[str]:
    """Lines put together from pieces of this config's TOML: headers of its sections, its
    keys, `=`, values, comments, and stray characters."""
    piece = st.one_of(
        st.sampled_from([f"[{s}]" for s in SECTION_NAMES] + [f"[[{s}]]" for s in SECTION_NAMES]),
        st.sampled_from(KEY_NAMES), st.sampled_from(SECTION_NAMES), st.sampled_from(TOML_BITS),
        st.text(max_size=8))
    return st.lists(st.lists(piece, max_size=6).map("".join), max_size=12).map("\n".join)


@settings(max_examples=scaled(300))
@given(st.one_of(st.text(max_size=300), tomlish_text()))
def test_random_text_gives_a_config_or_errors_naming_paths(text: str) -> None:
    try:
        document: dict[str, Any] | None = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        document = None
    outcome(text, document)


@settings(max_examples=scaled(60))
@given(document=tables(Config).filter(_tomlable), data=st.data())
def test_files_with_broken_bytes_give_a_config_or_errors_naming_paths(
    document: dict[str, Any], data: st.DataObject, tmp_path_factory: Any
) -> None:
    text = tomli_w.dumps(document).encode()
    cut = data.draw(st.integers(0, len(text)))
    raw = text[:cut] + data.draw(st.binary(max_size=20)) + text[cut:]
    path: Path = tmp_path_factory.mktemp("cfg") / "meshmon.toml"
    path.write_bytes(raw)
    try:
        broken: dict[str, Any] | None = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        broken = None
    try:
        load(path)
    except ConfigError as exc:
        assert_names_toml_paths(exc, broken)

"""The one place where configuration files are checked: every error names the file, where in it, the
key, and what was expected (``ConfigError``).

``Entry`` wraps one mapping of a file (the whole document, a ``rules[2]`` entry, a station's settings)
and hands out typed values; ``Problems`` collects errors where a loader reports all of them at once
(region packs) instead of stopping at the first.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from streams.kernel.errors import ConfigError

_REQUIRED = object()  # no default: the key must be there
_T = TypeVar("_T")
_D = TypeVar("_D")  # a default's own type


class Problems:
    """Collects problems so a loader reports all of them at once."""

    def __init__(self) -> None:
        self.items: list[ConfigError] = []

    def add(self, file: Path | str, problem: str, *, where: str | None = None, expected: str | None = None) -> None:
        """Record a problem (a checker then returns None: the value it could not make)."""
        self.items.append(ConfigError(file, problem, where=where, expected=expected))

    def extend(self, errors: Sequence[ConfigError]) -> None:
        self.items.extend(errors)

    def __bool__(self) -> bool:
        return bool(self.items)


def read_csv(path: Path, problems: Problems, *, expected: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV file's header and rows (row number, column -> text); problems recorded, never raised.

    UTF-8 (an optional BOM) only; a short row's missing cells read as ``""``, cells past the header are
    dropped; a file that is not UTF-8 or not CSV (a field over the csv module's limit) is a problem naming
    the file (and the row) — ([], []) then.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        problems.add(path, f"cannot read: {exc.strerror}", expected=expected)
        return [], []
    except UnicodeDecodeError as exc:
        problems.add(path, f"not UTF-8 text (byte {exc.start}: {exc.reason})", expected=f"UTF-8: {expected}")
        return [], []
    reader = csv.DictReader(io.StringIO(text, newline=""), restval="")
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = list(reader.fieldnames or [])
        for number, row in enumerate(reader, start=2):
            rows.append((number, {k: v for k, v in row.items() if isinstance(k, str)}))
    except csv.Error as exc:
        problems.add(path, f"not readable as CSV: {exc}", where=f"line {reader.line_num}", expected=expected)
        return [], []
    return header, rows


class Entry:
    """One mapping of a config file, with typed access whose errors say file, place, key and expectation."""

    def __init__(self, value: Any, file: Path | str, where: str | None = None, *, expected: str = "a mapping") -> None:
        if not isinstance(value, dict):
            raise ConfigError(file, f"entry is {value!r}" if where else "not a mapping", where=where, expected=expected)
        self.value = value
        self.file = file
        self.where = where

    # -- plumbing ------------------------------------------------------------------------------------
    def error(self, problem: str, expected: str | None = None) -> ConfigError:
        return ConfigError(self.file, problem, where=self.where, expected=expected)

    def at(self, where: str) -> Entry:
        """The same mapping, with errors placed more precisely (e.g. after its id is known)."""
        return Entry(self.value, self.file, where)

    def child(self, key: str, *, expected: str = "a mapping", required: bool = False) -> Entry:
        """A nested mapping (empty when absent and not required)."""
        raw = self._raw(key, expected) if required else (self.value.get(key) or {})
        spot = f"{self.where} {key}" if self.where else key
        if not isinstance(raw, dict):
            raise ConfigError(self.file, f"{key} is {raw!r}", where=spot, expected=expected)
        return Entry(raw, self.file, spot)

    def entries(self, key: str, *, expected: str, allow_empty: bool = False) -> Iterator[tuple[int, Any]]:
        """(index, item) of a list under key."""
        items = self.value.get(key)
        if not isinstance(items, list) or (not items and not allow_empty):
            raise self.error(f"no {key}" if not items else f"{key} is {items!r}", expected)
        return iter(enumerate(items))

    def get(self, key: str, default: Any = None) -> Any:
        return self.value.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.value

    def _raw(self, key: str, expected: str, default: object = _REQUIRED) -> Any:
        if key not in self.value:
            if default is _REQUIRED:
                raise self.error(f"missing key '{key}'", expected)
            return default
        return self.value[key]

    # -- typed values (a default, when given, is returned as it is when the key is absent) ----------------
    @overload
    def text(self, key: str, *, expected: str, pattern: re.Pattern[str] | None = None) -> str: ...
    @overload
    def text(self, key: str, *, expected: str, pattern: re.Pattern[str] | None = None, default: _D) -> str | _D: ...
    def text(
        self, key: str, *, expected: str, pattern: re.Pattern[str] | None = None, default: object = _REQUIRED
    ) -> object:
        value = self._raw(key, expected, default)
        if value is default and default is not _REQUIRED:
            return value
        if not isinstance(value, str) or not value or (pattern is not None and not pattern.fullmatch(value)):
            raise self.error(f"{key} is {value!r}", expected)
        return value

    @overload
    def integer(self, key: str, *, expected: str, minimum: int | None = None) -> int: ...
    @overload
    def integer(self, key: str, *, expected: str, minimum: int | None = None, default: _D) -> int | _D: ...
    def integer(self, key: str, *, expected: str, minimum: int | None = None, default: object = _REQUIRED) -> object:
        value = self._raw(key, expected, default)
        if value is default and default is not _REQUIRED:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            raise self.error(f"{key} is {value!r}", expected)
        return value

    def number(
        self, key: str, *, expected: str = "a number", minimum: float | None = None, default: object = _REQUIRED
    ) -> float:
        value = self._raw(key, expected, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise self.error(f"{key} is {value!r}", expected)
        if minimum is not None and value < minimum:
            raise self.error(f"{key} is {value}", f">= {minimum}")
        return float(value)

    def choice(self, key: str, choices: Sequence[_T], *, default: object = _REQUIRED) -> _T:
        """One of the choices; a default outside them (None) makes an absent key an error naming the choices."""
        expected = " | ".join(str(c) for c in choices)
        value = self._raw(key, expected, default)
        if value not in choices:
            raise self.error(f"{key} is {value!r}", expected)
        chosen: _T = value  # one of the choices (checked above)
        return chosen

    def strings(self, key: str, *, expected: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        """A list of strings (empty when absent)."""
        value = self.value.get(key) or []
        if not isinstance(value, list) or any(
            not isinstance(v, str) or (pattern is not None and not pattern.fullmatch(v)) for v in value
        ):
            raise self.error(f"{key} is {value!r}", expected)
        return tuple(value)

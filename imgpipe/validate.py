"""Typed reads of a raw TOML table that collect every problem, each with its key path.

One message format for all of them (errors.describe): what was received, what was expected,
where (`rules[1].widths[2]`), and the closest valid value.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import OptionError, Problem, closest, describe
from .options import Recipe, parse, settle


class Validator:
    """Collects every problem instead of stopping at the first, so one run lists them all."""

    def __init__(self, warnings: list[Problem]):
        self.errors: list[Problem] = []
        self.warnings = warnings

    def unknown_keys(self, table: dict, known: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in known:
                path = f"{where}.{key}" if where else key
                self.warnings.append(
                    describe(
                        "unknown-key",
                        key,
                        "one of " + ", ".join(known),
                        path,
                        suggestion=closest(key, known),
                    )
                )

    def type_error(self, value: Any, expected: str, where: str) -> None:
        self.errors.append(
            describe("bad-type", str(value), f"{expected}, not {_kind(value)}", where)
        )

    def string(self, table: dict, key: str, where: str, default: str | None = None) -> str | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            self.type_error(value, "a string", _join(where, key))
            return None
        return value

    def integer(
        self,
        table: dict,
        key: str,
        where: str,
        default: int | None = None,
        low: int = 0,
        high: int | None = None,
    ) -> int | None:
        value = table.get(key, default)
        return self._int(value, _join(where, key), low, high)

    def _int(self, value: Any, where: str, low: int, high: int | None) -> int | None:
        expected = f"an integer from {low} to {high}" if high else f"an integer of at least {low}"
        if isinstance(value, bool) or not isinstance(value, int):
            self.type_error(value, expected, where)
            return None
        if value < low or (high is not None and value > high):
            self.errors.append(describe("out-of-range", str(value), expected, where))
            return None
        return value

    def size(self, table: dict, key: str, where: str, default: int) -> int | None:
        """A number of bytes: an integer, or a string in the units reports print (decimal,
        errors.size_text): "256 MB", "1.5 GB", "0"."""
        value = table.get(key, default)
        if isinstance(value, str):
            match = _SIZE.match(value.strip())
            if match is None:
                self.errors.append(
                    describe(
                        "bad-size",
                        value,
                        "a size such as 256 MB (B, KB, MB or GB) or an integer of bytes",
                        _join(where, key),
                    )
                )
                return None
            return round(float(match[1]) * _UNITS[(match[2] or "B").upper()])
        return self._int(value, _join(where, key), 0, None)

    def int_list(self, table: dict, key: str, where: str, low: int, high: int) -> list[int] | None:
        values = table[key]
        path = _join(where, key)
        if not isinstance(values, list) or not values:
            self.type_error(values, f"a non-empty list of integers from {low} to {high}", path)
            return None
        checked = [self._int(x, f"{path}[{i}]", low, high) for i, x in enumerate(values)]
        return None if None in checked else checked

    def string_list(
        self, table: dict, key: str, where: str, choices: tuple[str, ...] | None = None
    ) -> list[str] | None:
        if key not in table:
            return None
        values = table[key]
        path = _join(where, key)
        if isinstance(values, str):  # one glob or format alone is close enough
            values = [values]
        if not isinstance(values, list) or not values:
            self.type_error(values, "a non-empty list of strings", path)
            return None
        ok = True
        for i, x in enumerate(values):
            if not isinstance(x, str):
                self.type_error(x, "a string", f"{path}[{i}]")
                ok = False
            elif choices and x not in choices:
                self.errors.append(
                    describe(
                        "bad-choice",
                        x,
                        "one of " + ", ".join(choices),
                        f"{path}[{i}]",
                        suggestion=closest(x, choices),
                    )
                )
                ok = False
        return values if ok else None

    def recipe(self, text: str, where: str) -> Recipe | None:
        try:
            recipe = parse(text)
        except OptionError as exc:
            self.errors.extend(at(p, where) for p in exc.problems)
            return None
        self.warnings.extend(at(p, where) for p in recipe.warnings)
        return recipe

    def settled(self, recipe: Recipe, where: str) -> Recipe:
        """A recipe made from a parsed one (a family member), settled like a parsed string."""
        recipe = settle(recipe)
        self.warnings.extend(at(p, where) for p in recipe.warnings)
        return recipe


_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$", re.IGNORECASE)


def at(problem: Problem, where: str) -> Problem:
    """An option-language problem, placed at the config key it came from."""
    return Problem(problem.code, f"{where}: {problem.message}", where)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


_TOML_TYPES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def _kind(value: Any) -> str:
    return _TOML_TYPES.get(type(value), "a date/time")

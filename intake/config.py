"""Reading an intake rules file: located YAML, every problem reported with its file and line."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from workflow.categories import DEFAULT_CATEGORIES, Categories
from workflow.durations import Duration, DurationError, parse_duration
from workflow.errors import ConfigError, Problem
from workflow.yaml_lines import LocatedYaml, YamlError, load_located

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
YamlPath = tuple[str | int, ...]


class IntakeConfigError(ConfigError):
    """An intake rules file that cannot be used; ``problems`` lists every problem with file:line."""


def read_located(path: str | Path) -> tuple[LocatedYaml, str]:
    """The file's YAML with line numbers, and the sha256 of its bytes (the rules' version)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IntakeConfigError([Problem(str(path), 1, f"cannot read file: {exc.strerror}")]) from exc
    return parse_located(raw.decode("utf-8", errors="replace"), str(path)), hashlib.sha256(raw).hexdigest()


def parse_located(text: str, file: str) -> LocatedYaml:
    try:
        return load_located(text, file)
    except YamlError as exc:
        raise IntakeConfigError([Problem(exc.file, exc.line, exc.message)]) from exc


class Reader:
    """Collects every problem of one file instead of stopping at the first."""

    def __init__(self, located: LocatedYaml, categories: Categories = DEFAULT_CATEGORIES) -> None:
        self.located = located
        # The desk's categories the file's rules may name (desk/loader.py passes the desk's).
        self.categories = categories
        self.problems: list[Problem] = []

    def problem(self, path: YamlPath, message: str) -> None:
        self.problems.append(Problem(self.located.file, self.located.line(path), message))

    def fail_if_problems(self) -> None:
        if self.problems:
            raise IntakeConfigError(self.problems)

    def section(self, key: str, allowed: set[str]) -> dict[str, Any]:
        """The top-level mapping under ``key`` (the file's only key besides a description)."""
        data = self.located.data
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            self.problem(
                (key,) if isinstance(data, dict) and key in data else (),
                f"the file must be a mapping with '{key}:' holding the rules",
            )
            raise IntakeConfigError(self.problems)
        self.unknown_keys(data, {key, "description"}, (), "the file")
        section: dict[str, Any] = data[key]
        self.unknown_keys(section, allowed, (key,), key)
        return section

    def unknown_keys(self, mapping: dict[str, Any], allowed: set[str], path: YamlPath, what: str) -> None:
        for name in mapping:
            if name not in allowed:
                self.problem((*path, name), f"unknown key {name!r} in {what} (allowed: {', '.join(sorted(allowed))})")

    def integer(self, value: Any, path: YamlPath, what: str, *, minimum: int = 0, maximum: int = 10**12) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, f"{what} must be a whole number, got {value!r}")
            return None
        if not minimum <= value <= maximum:
            self.problem(path, f"{what} must be between {minimum} and {maximum}, got {value}")
            return None
        return value

    def number(
        self, value: Any, path: YamlPath, what: str, *, minimum: float = 0, maximum: float = 100
    ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(path, f"{what} must be a number, got {value!r}")
            return None
        if not minimum <= value <= maximum:
            self.problem(path, f"{what} must be between {minimum:g} and {maximum:g}, got {value}")
            return None
        return float(value)

    def text(self, value: Any, path: YamlPath, what: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(path, f"{what} must be non-empty text, got {value!r}")
            return None
        return value

    def texts(self, value: Any, path: YamlPath, what: str) -> list[str]:
        if not isinstance(value, list):
            self.problem(path, f"{what} must be a list of texts")
            return []
        result = []
        for index, item in enumerate(value):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                item = str(item)  # a bare number in YAML (a model name like 128) is meant as text
            checked = self.text(item, (*path, index), f"{what}[{index}]")
            if checked is not None:
                result.append(checked)
        return result

    def duration(self, value: Any, path: YamlPath, what: str) -> Duration | None:
        try:
            duration = parse_duration(value)
        except DurationError as exc:
            self.problem(path, f"{what}: {exc}")
            return None
        if duration.business:
            self.problem(path, f"{what} is a calendar window such as '30d', not business time")
            return None
        return duration

"""Load YAML while remembering the line of every node, so errors can name it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from workflow.errors import ConfigError, Problem

Path = tuple[str | int, ...]


class YamlError(ConfigError):
    """A file that is not YAML (or not the YAML subset configuration files use), at one place."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__([Problem(file, line, message)])
        self.file = file
        self.line = line
        self.message = message


@dataclass
class LocatedYaml:
    """Plain Python data plus the 1-based line of each path inside it."""

    data: Any
    file: str
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int:
        """The line of ``path`` or of its nearest located ancestor."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def load_located(text: str, file: str) -> LocatedYaml:
    """Parse one YAML document; duplicate mapping keys are an error (PyYAML keeps the last)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(file, line, f"invalid YAML: {problem}") from exc
    located = LocatedYaml(data=None, file=file)
    if node is None:
        located.data = None
        return located
    located.data = _convert(node, (), located)
    return located


def _convert(node: yaml.Node, path: Path, located: LocatedYaml) -> Any:
    located.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, (str, int)):
                raise YamlError(located.file, key_node.start_mark.line + 1, f"mapping key {key!r} must be text")
            key = str(key)
            if key in result:
                raise YamlError(located.file, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            result[key] = _convert(value_node, (*path, key), located)
            located.lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, index), located) for index, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()

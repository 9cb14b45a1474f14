"""YAML as a job file is read: plain data plus the line of every key path (``sources[1].path``), for messages.

One pass over PyYAML's node tree, bounded: aliases may not expand past NODE_BUDGET values (a few hundred bytes
of nested aliases otherwise expand to billions), nesting may not pass MAX_DEPTH, and a key given twice in one
mapping is an error rather than a silent "last one wins".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..core.errors import JobError

NODE_BUDGET = 100_000  # values, aliases expanded: a large catalogue is a few thousand
MAX_DEPTH = 64


def load(text: str, path: Path) -> tuple[Any, dict[str, int]]:
    """(data, {key path: 1-based line}) for a YAML document; JobError naming the line for anything wrong."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        reader = _Reader(loader, path)
        return (reader.value(node, "", 0) if node is not None else None), reader.lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise JobError([f"{where}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise JobError([f"{path}: invalid YAML: nested too deep"]) from None
    finally:
        loader.dispose()


class _Reader:
    def __init__(self, loader: yaml.SafeLoader, path: Path):
        self.loader = loader
        self.path = path
        self.lines: dict[str, int] = {}
        self.budget = NODE_BUDGET

    def fail(self, node: yaml.Node, message: str) -> JobError:
        return JobError([f"{self.path}:{node.start_mark.line + 1}: invalid YAML: {message}"])

    def value(self, node: yaml.Node, key: str, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.fail(node, f"more than {NODE_BUDGET} values once aliases are expanded")
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nested more than {MAX_DEPTH} levels deep")
        self.lines.setdefault(key, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, key, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, f"{key}[{i}]", depth + 1) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.MappingNode, key: str, depth: int) -> dict[Any, Any]:
        own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        self.loader.flatten_mapping(node)  # YAML merge keys (<<: *defaults) come first; the mapping's own win
        merged = len(node.value) - own
        result: dict[Any, Any] = {}
        written: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            name = self.loader.construct_object(key_node, deep=True)
            if not isinstance(name, (str, int, float, bool)) and name is not None:
                raise self.fail(key_node, "a key must be plain text")
            if index >= merged:
                if name in written:
                    raise self.fail(key_node, f"key {name!r} is given twice")
                written.add(name)
            sub = f"{key}.{name}" if key else str(name)
            self.lines[sub] = key_node.start_mark.line + 1
            result[name] = self.value(value_node, sub, depth + 1)
        return result

"""The package's shape: no import cycles, no module over 400 lines, no function over 60, no work at import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from narrator.providers import PROVIDERS

PACKAGE = Path(__file__).resolve().parent.parent / "narrator"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports, wherever the import stands (inside functions too), except under
    ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if _in_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if node.module:  # `from . import x` names submodules; `from .x import y` imports x itself
                found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    # the packages a module lives in are imported before it, whatever it says: not edges of its own
    ancestors = {me.rsplit(".", depth)[0] for depth in range(1, me.count(".") + 1)}
    return {m for m in found if m in modules and m != me and m not in ancestors}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: imports_of(path, set(files)) for name, path in files.items()}
    graph["narrator.providers"] |= set(PROVIDERS.values())  # the registry imports its entries by name
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.mark.slow
def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert graph["narrator.run.engine"] >= {
        "narrator.run.bookrun",
        "narrator.run.local",
        "narrator.run.preflight",
        "narrator.synthesis.script",
    }
    assert "narrator.build.outputs" in graph["narrator.run.local"]
    assert "narrator.run.planning" in graph["narrator.run.preflight"]
    assert "narrator.providers.openai" in graph["narrator.providers"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


# The package's floors, lowest first: a package imports only from the floors below it and its own. What a floor
# holds is in its __init__.py; the README's map names every module. devtools/ (the fake server, the Ray cluster
# helper, generators for tests) stands beside the package, outside the wheel: nothing in narrator imports it.
FLOORS = ["core", "text", "providers", "job", "synthesis", "build", "run", "review", "catalogue", "cli"]


def floor_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return None if len(parts) == 1 else "cli"
    return parts[1]


@pytest.mark.slow
def test_every_module_stands_on_a_floor_and_imports_no_floor_above_its_own():
    graph = import_graph()
    upward = []
    for module, imports in graph.items():
        floor = floor_of(module)
        if floor is None:
            continue
        assert floor in FLOORS, f"{module} stands on no floor: add its package to FLOORS, where it belongs"
        for imported in imports:
            other = floor_of(imported)
            if other is not None and FLOORS.index(other) > FLOORS.index(floor):
                upward.append(f"{module} ({floor}) imports {imported} ({other})")
    assert not upward, upward


def test_the_package_top_level_is_a_few_modules_and_its_floors():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py"]
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(FLOORS)


def test_nothing_in_narrator_imports_devtools():
    importing = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            importing += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "devtools"]
    assert not importing, importing
    assert not (PACKAGE / "devtools").exists()


def test_the_cycle_finder_finds_function_level_imports(tmp_path):
    # the checker itself must see an import inside a function as an edge, and TYPE_CHECKING ones as none
    pkg = tmp_path / "narrator"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n")
    modules = {"narrator", "narrator.a", "narrator.b", "narrator.c"}
    global PACKAGE
    saved, PACKAGE = PACKAGE, pkg
    try:
        graph = {module_name(p): imports_of(p, modules) for p in pkg.glob("*.py")}
    finally:
        PACKAGE = saved
    assert graph["narrator.b"] == {"narrator.a"} and graph["narrator.c"] == set()
    assert find_cycle(graph) in (["narrator.a", "narrator.b", "narrator.a"], ["narrator.b", "narrator.a", "narrator.b"])


# The size rules, measured on the code as ruff formats it (make lint checks the formatting): a `# fmt: skip`
# packing is allowed only on a table (a literal collection assigned to a name), at most 15 in the package.
MAX_MODULE, MAX_FUNCTION, MAX_CLASS, MAX_ATTRIBUTES, MAX_PACKED = 400, 50, 200, 12, 15


def _length(node: ast.AST) -> int:
    return (getattr(node, "end_lineno", None) or node.lineno) - node.lineno + 1  # type: ignore[attr-defined]


def attributes_of(cls: ast.ClassDef) -> set[str]:
    """What an instance of ``cls`` holds: its annotated fields and every ``self.x = ...`` in its methods."""
    names = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    for node in ast.walk(cls):
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) and leaf.value.id == "self":
                    names.add(leaf.attr)
    return names


def size_problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    name = path.relative_to(PACKAGE).as_posix()
    found = [f"{name}: {len(text.splitlines())} lines"] if len(text.splitlines()) > MAX_MODULE else []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _length(node) > MAX_FUNCTION:
            found.append(f"{name}:{node.lineno} {node.name}: {_length(node)} lines")
        if isinstance(node, ast.ClassDef):
            if _length(node) > MAX_CLASS:
                found.append(f"{name}:{node.lineno} class {node.name}: {_length(node)} lines")
            # a record's fields are a published file format (docs/schemas) or the job file's keys: not counted
            is_record = {ast.unparse(base) for base in node.bases} & {"Record", "_Spec", "BaseModel"}
            if not is_record and len(held := attributes_of(node)) > MAX_ATTRIBUTES:
                found.append(f"{name}:{node.lineno} class {node.name}: {len(held)} attributes {sorted(held)}")
    tables = {
        line
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        and isinstance(node.value, (ast.Dict, ast.List, ast.Tuple, ast.Set))
        for line in range(node.lineno, _length(node) + node.lineno)
    }
    for number, line in enumerate(text.splitlines(), 1):
        if line.rstrip().endswith("# fmt: skip") and number not in tables:
            found.append(f"{name}:{number}: `# fmt: skip` on something that is not a table")
    return found


def test_the_size_rules_hold_on_formatted_code():
    problems = [problem for path in sorted(PACKAGE.rglob("*.py")) for problem in size_problems(path)]
    packed = sum(p.read_text(encoding="utf-8").count("# fmt: skip") for p in PACKAGE.rglob("*.py"))
    assert packed <= MAX_PACKED, f"{packed} `# fmt: skip` packings (at most {MAX_PACKED}, on tables)"
    assert not problems, "\n".join(problems)
    assert len(list(PACKAGE.glob("*.py"))) <= 12


def test_the_size_rules_see_what_they_measure(tmp_path):
    # the checker itself: a packed call, a long class, too many attributes are each found
    held = "\n".join(f"        self.a{i} = {i}" for i in range(13))
    source = f"class Big:\n    def __init__(self):\n{held}\n" + "    x = 1\n" * 190
    source += "def f():\n    return g(1, 2)  # fmt: skip\nTABLE = {1: 2}  # fmt: skip\n"
    path = PACKAGE / "_probe_for_the_size_test.py"
    path.write_text(source)
    try:
        found = "\n".join(size_problems(path))
    finally:
        path.unlink()
    assert "class Big: 205 lines" in found and "13 attributes" in found
    assert ":207: `# fmt: skip`" in found and ":208:" not in found


def _outside_libraries(tree: ast.AST) -> set[str]:
    """The names a module binds by importing from outside narrator (a library's objects are set up its way)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("narrator")}
        elif isinstance(node, ast.ImportFrom) and not node.level and not (node.module or "").startswith("narrator"):
            names |= {a.asname or a.name for a in node.names}
    return names


def finished_from_outside(source: str) -> list[str]:
    """``x.attr = ...`` where ``x`` is an object a call made in the same function: an object finished from
    outside after its construction (``run = _Run(...); run.script = ...``). Objects of libraries outside narrator
    (tqdm, mutagen, onnxruntime) are exempt: they are made to be set up that way."""
    tree = ast.parse(source)
    libraries = _outside_libraries(tree)
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        made: dict[str, int] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Call, ast.BoolOp)):
                calls = [n for n in ast.walk(node.value) if isinstance(n, ast.Call)]
                root = calls[0].func if calls else None
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id not in libraries:
                    made |= {t.id: node.lineno for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(function):
            targets = node.targets if isinstance(node, ast.Assign) else []
            targets += [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                for leaf in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) and leaf.value.id in made:
                        found.append(f"{node.lineno}: {ast.unparse(leaf)}")
    return sorted(set(found), key=lambda line: int(line.split(":")[0]))  # a nested function is walked twice


def test_no_object_is_finished_from_outside():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += [f"{path.relative_to(PACKAGE)}:{line}" for line in finished_from_outside(path.read_text("utf-8"))]
    assert not found, "\n".join(found)


def test_the_outside_finishing_checker_sees_it():
    source = "from tqdm import tqdm\ndef f():\n    run = Run()\n    run.script = 1\n    bar = tqdm()\n    bar.n = 2\n"
    assert finished_from_outside(source) == ["4: run.script"]


@pytest.mark.slow
def test_importing_every_module_changes_nothing_in_the_process():
    # umask, warnings filters and pydub's globals are process state a library must not touch on import
    probe = """
import importlib, os, pkgutil, warnings
import numpy  # numpy adds warning filters of its own when imported: that is numpy's business
mask = os.umask(0o027); os.umask(mask)
filters = list(warnings.filters)
import narrator
names = [m.name for m in pkgutil.walk_packages(narrator.__path__, "narrator.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
after = os.umask(0o027)
assert after == mask, (oct(after), oct(mask))
assert warnings.filters == filters
assert "pydub" not in __import__("sys").modules, "pydub imported at import time"
print(len(names))
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 30

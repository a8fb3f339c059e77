"""The house keeps its floors: imports point down, SQL runs only in store/, typer and rich only in
cli/, and no import circle. Read from the source itself, so a change that breaks a floor fails."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "kuroshio"
FLOORS: dict[str, int] = {
    "errors": 0,
    "model": 1,
    "merkle": 1,
    "inputs": 1,
    "catalogue": 2,
    "geo": 2,
    "pki": 2,
    "partners": 3,
    "store": 2,
    "audit": 3,
    "access": 3,
    "policy": 4,
    "fusion": 4,
    "exchange": 4,
    "ingest": 4,
    "feeds": 4,
    "export": 4,
    "messages": 4,
    "node": 5,
    "federation": 6,
    "api": 6,
    "tak": 6,
    "demo": 6,
    "cli": 7,
    "__main__": 8,
}
"""Each top-level part of kuroshio and its floor: a part imports only parts on lower floors, or
its own floor's parts that the list below allows."""
SAME_FLOOR = {
    ("store", "model"),
    ("audit", "store"),
    ("exchange", "policy"),
    ("fusion", "policy"),
    ("fusion", "feeds"),
    ("federation", "api"),
    ("federation", "tak"),
    ("export", "feeds"),
    ("exchange", "messages"),
    ("messages", "policy"),
}
"""Parts that may use another part of their own floor (never the other way round)."""


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("kuroshio", *path.relative_to(PACKAGE).with_suffix("").parts))
        found[name.removesuffix(".__init__")] = ast.parse(path.read_text("utf-8"))
    return found


MODULES = _modules()


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(module: str, tree: ast.Module) -> set[str]:
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets.add(node.module)
            targets.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in MODULES and t != module}


def test_every_part_has_a_floor() -> None:
    parts = {_part(m) for m in MODULES} - {"__init__"}
    assert parts <= set(FLOORS), f"parts without a floor: {sorted(parts - set(FLOORS))}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    part = _part(module)
    if part == "__init__":
        return
    for target in _imports(module, MODULES[module]):
        other = _part(target)
        if other in (part, "__init__"):
            continue
        allowed = FLOORS[other] < FLOORS[part] or (part, other) in SAME_FLOOR
        assert allowed, f"{module} imports {target}: {part} may not use {other}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_sql_runs_only_in_the_store_and_typer_rich_only_in_the_cli(module: str) -> None:
    tree = MODULES[module]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("execute", "executemany", "executescript")
        ):
            assert _part(module) == "store", f"{module} executes SQL"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                if name and name.split(".")[0] in ("typer", "rich"):
                    assert _part(module) == "cli", f"{module} imports {name}"


def test_no_import_circle() -> None:
    graph = {m: _imports(m, tree) for m, tree in MODULES.items()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])

"""The developer tooling, the monitoring page and the reference Outreach server stay small and
acyclic (issue 10): no import cycle inside upstream.dev, upstream.monitoring or outreach_ref,
and no module over 400 lines. Static (ast): nothing is imported, no database, no Airflow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGES = ("upstream/dev", "upstream/monitoring", "outreach_ref")
MAX_LINES = 400


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / package).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                found.add(candidate if candidate in known else module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    known = _modules(package)
    graph = {name: _imports(name, path, known) for name, path in known.items()}

    def reaches(start: str, target: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            for nxt in graph[current]:
                if nxt == target:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    # A package's __init__ importing its own submodules is how re-exports work, not a cycle.
    cycles = sorted((a, b) for a, deps in graph.items() for b in deps
                    if reaches(b, a) and not b.startswith(a + ".") and not a.startswith(b + "."))
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_400_lines(package):
    long = {name: n for name, path in _modules(package).items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these by concern: {long}"

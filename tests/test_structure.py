"""The layout's rules, checked on the source (docs/ARCHITECTURE.md, "Rules of the layout"):
no module over 500 lines, no import circles (type-only and function-level imports included),
at most 8 modules at the controller's top level, and nothing that points outside the repository."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"controller": ROOT / "controller", "syncrig_agent": ROOT / "pi-deploy" / "syncrig_agent"}
MAX_LINES = 500


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def module_files() -> dict[str, Path]:
    """Dotted module name → file, for both packages."""
    modules = {}
    for name, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            parts = [name, *rel.parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every import of a project module, wherever it stands (top level, function, TYPE_CHECKING)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # A module's own enclosing packages are imported before it by Python itself.
                if target and target != name and not name.startswith(target + "."):
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    found = cycles(import_graph(module_files()))
    assert not found, "import circles (type-only included): " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _imports_of(prefix: str) -> dict[str, set[str]]:
    graph = import_graph(module_files())
    return {name: edges for name, edges in graph.items() if name == prefix or name.startswith(prefix + ".")}


def _outside_imports(path: Path) -> set[str]:
    """Top-level package names a file imports (to see the agent never imports the desktop)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_agent_never_imports_the_desktop() -> None:
    agent = {n: p for n, p in module_files().items() if n.startswith("syncrig_agent")}
    offenders = sorted(n for n, p in agent.items() if "controller" in _outside_imports(p))
    assert not offenders, f"agent modules importing controller (a Pi has no controller): {offenders}"


def test_outputs_never_import_encoders() -> None:
    bad = {
        name: sorted(e for e in edges if e.startswith("syncrig_agent.encoders"))
        for name, edges in _imports_of("syncrig_agent.outputs").items()
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"outputs are independent of encoders (picamera2's shape): {bad}"


def test_the_contract_imports_only_the_contract() -> None:
    """Both sides import the contract; it must not drag in the agent's runtime (or anything else)."""
    bad = {
        name: sorted(e for e in edges if not e.startswith("syncrig_agent.contract"))
        for name, edges in _imports_of("syncrig_agent.contract").items()
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"contract modules importing outside the contract: {bad}"


def test_no_module_over_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in tracked_files()
        if p.suffix == ".py" and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_controller_top_level_holds_at_most_8_modules() -> None:
    top = sorted(p.name for p in PACKAGES["controller"].glob("*.py"))
    assert len(top) <= 8, top


def test_nothing_points_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|shared/ARCHITECTURE|shared/REFERENCE|PLATFORM-NOTES")
    hits = [
        str(p.relative_to(ROOT))
        for p in tracked_files()
        if p.suffix in (".py", ".md", ".sh", ".toml", ".txt", ".html", ".js", ".service", ".conf", ".yml")
        and p != Path(__file__).resolve()
        and outside.search(p.read_text(errors="replace"))
    ]
    assert not hits, f"files that cite paths outside the repository: {hits}"
    assert (ROOT / "docs" / "ARCHITECTURE.md").is_file()

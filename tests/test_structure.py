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
                # Importing a.b.c runs a/__init__ and a/b/__init__ first: those count too, except the
                # importer's own enclosing packages (Python imports them before the importer itself).
                while target:
                    if target != name and not name.startswith(target + "."):
                        edges.add(target)
                    target = target.rpartition(".")[0]
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


# --- session-directory paths: built by syncrig_agent/contract/layout.py alone --------------------
LAYOUT_MODULE = PACKAGES["syncrig_agent"] / "contract" / "layout.py"
FORMATS_DIR = PACKAGES["syncrig_agent"] / "contract" / "formats"
SCANNED_DIRS = ("controller", "pi-deploy", "tools", "benchmarks")
SESSION_DIRS = {"synced", "raw", "stream", "trimmed"}
SESSION_FILE = re.compile(r"match\.csv|\.map\.csv|\.frames\.csv|session\.json")
SESSION_DIR_IN_PATH = re.compile(r"(^|/)(synced|raw|stream|trimmed)/")
PATH_CALLS = {"Path", "PurePath", "PurePosixPath", "joinpath", "session_subdir", "glob", "rglob"}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _builds_a_path(node: ast.AST, parent: ast.AST | None) -> bool:
    """A bare directory name used as a path: `x / "raw"`, `Path("raw")`, `folder.name == "raw"`."""
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Div):
        return True
    if isinstance(parent, ast.Call) and node in parent.args:
        func = parent.func
        return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in PATH_CALLS
    if isinstance(parent, ast.Compare):
        sides = [parent.left, *parent.comparators]
        return any(isinstance(s, ast.Attribute) and s.attr in ("name", "stem") for s in sides)
    return False


def session_path_literals(source: str, allow_suffix_constants: bool = False) -> list[int]:
    """Lines where code spells a session-directory path itself: a string (or f-string) without
    whitespace (prose, i.e. a message, has some) naming match.csv, a .map.csv, a .frames.csv,
    session.json or synced/, raw/, stream/, trimmed/; or a bare directory name used as a path.
    Docstrings are prose and not scanned; `X_SUFFIX = "..."` constants are the formats' own."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    lines = set()
    for node in ast.walk(tree):
        parent = parents.get(id(node))
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and not isinstance(parent, ast.JoinedStr)
        ):
            text = node.value
        else:
            continue
        if id(node) in docstrings or any(c.isspace() for c in text):
            continue
        if (
            allow_suffix_constants
            and isinstance(parent, ast.Assign)
            and all(isinstance(t, ast.Name) and t.id.endswith("_SUFFIX") for t in parent.targets)
        ):
            continue
        names_a_path = SESSION_FILE.search(text) or SESSION_DIR_IN_PATH.search(text)
        if names_a_path or (text in SESSION_DIRS and _builds_a_path(node, parent)):
            lines.add(node.lineno)
    return sorted(lines)


def test_session_paths_are_built_by_the_layout_alone() -> None:
    hits = []
    for path in tracked_files():
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in SCANNED_DIRS or path.suffix != ".py" or path == LAYOUT_MODULE:
            continue
        in_formats = FORMATS_DIR in path.parents
        hits += [
            f"{rel}:{n}" for n in session_path_literals(path.read_text(), allow_suffix_constants=in_formats)
        ]
    assert not hits, (
        "session-directory paths spelled outside contract/layout.py (use SessionLayout): " + ", ".join(hits)
    )


def test_the_path_scanner_finds_planted_literals() -> None:
    planted = '''
"""Docstrings may say synced/match.csv."""
a = session / "synced" / "match.csv"
b = f"{session_id}/raw/{name}"
c = folder / f"{cam}.map.csv"
d = Path("trimmed")
e = folder.name == "stream"
f = sorted(p for p in stream_dir.glob("*.frames.csv"))
g = root / "session.json"
'''
    assert session_path_literals(planted) == [3, 4, 5, 6, 7, 8, 9]
    prose = """
raise ValueError(f"{session} is not synced (no synced/match.csv): run `syncrig sync`")
message = {"type": "stream", "raw": 1}
kind = "stream" if live else "pi"
if k != "raw":
    pass
PTS_SUFFIX = ".frames.csv"
"""
    assert session_path_literals(prose, allow_suffix_constants=True) == []
    assert session_path_literals(prose) == [7]

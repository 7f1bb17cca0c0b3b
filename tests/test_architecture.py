"""The dependency rules of docs/architecture.md, checked over the source as it is."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "core",
    "campaigns",
    "nominations",
    "media",
    "voting",
    "awards",
    "appraisal",
    "pages",
)

# Which packages each package may import at module level (docs/architecture.md). Domains build on
# the ones before them; nothing imports pages; core imports no domain except where it wires them.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "campaigns": {"core"},
    "nominations": {"core", "campaigns"},
    "media": {"core", "campaigns", "nominations"},
    "voting": {"core", "campaigns", "nominations"},
    "awards": {"core", "campaigns", "nominations", "media", "voting"},
    "appraisal": {"core", "campaigns", "nominations"},
    "pages": {"core", "campaigns", "nominations", "media", "voting", "awards", "appraisal"},
}
# The factory and the command registration wire the domains in; they are the only modules of
# core that import them (and may do so inside create_app / init_app).
WIRING = {"core/__init__.py", "core/cli.py"}
# Data, not code: the demo's invented county.
LONG_ALLOWED = {"nominations/demo_data.py"}
MAX_LINES = 700


@dataclass(frozen=True)
class Import:
    source: str  # module that imports, dotted
    target: str  # project module imported, dotted
    path: str  # file, relative to the root
    line: int
    in_function: bool


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _imports(path: Path, root: Path, modules: set[str]) -> Iterator[Import]:
    module = _module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    function_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    function_lines.add(inner.lineno)
    type_checking: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    type_checking.add(inner.lineno)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or node.lineno in type_checking:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            target = _resolve(node, module, path.name == "__init__.py")
            # `from pkg import mod` imports the submodule when there is one.
            names = [
                f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                for alias in node.names
            ]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield Import(
                    module,
                    name,
                    str(path.relative_to(root)),
                    node.lineno,
                    node.lineno in function_lines,
                )


def scan(root: Path, packages: Iterable[str]) -> tuple[list[Import], dict[str, int]]:
    """Every import between the packages' modules, and each file's line count."""
    files = [f for package in packages for f in sorted((root / package).rglob("*.py"))]
    modules = {_module_name(f, root) for f in files}
    found: list[Import] = []
    lines: dict[str, int] = {}
    for f in files:
        found.extend(_imports(f, root, modules))
        lines[str(f.relative_to(root))] = len(f.read_text(encoding="utf-8").splitlines())
    return found, lines


def cycles(imports: Iterable[Import]) -> list[list[str]]:
    """The module-level import cycles (strongly connected components of more than one module)."""
    graph: dict[str, set[str]] = {}
    for item in imports:
        if not item.in_function:
            graph.setdefault(item.source, set()).add(item.target)
            graph.setdefault(item.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:  # Tarjan; the graph is a few hundred modules
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(imports: Iterable[Import], allowed: dict[str, set[str]]) -> list[str]:
    """Imports that break the layering, and imports of project modules inside functions."""
    problems = []
    for item in imports:
        source_pkg, target_pkg = item.source.split(".")[0], item.target.split(".")[0]
        where = f"{item.path}:{item.line} imports {item.target}"
        if item.path in WIRING:
            continue
        if item.in_function:
            problems.append(f"{where} inside a function")
        elif source_pkg != target_pkg and target_pkg not in allowed[source_pkg]:
            problems.append(f"{where}: {source_pkg} may not depend on {target_pkg}")
    return problems


def test_no_import_cycle() -> None:
    imports, _ = scan(ROOT, PACKAGES)
    assert cycles(imports) == []


def test_the_packages_depend_only_downwards() -> None:
    imports, _ = scan(ROOT, PACKAGES)
    assert violations(imports, ALLOWED) == []


def test_no_module_over_700_lines() -> None:
    _, lines = scan(ROOT, PACKAGES)
    long = {path: n for path, n in lines.items() if n > MAX_LINES and path not in LONG_ALLOWED}
    assert long == {}


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        (
            {  # a direct cycle between two packages
                "alpha/__init__.py": "",
                "alpha/services.py": "from beta import services\n",
                "beta/__init__.py": "",
                "beta/services.py": "from alpha.services import thing\n",
            },
            ["alpha.services", "beta.services"],
        ),
        (
            {  # a longer one, through relative imports inside one package and a package's face
                "alpha/__init__.py": "from alpha import models\n",
                "alpha/models.py": "from .rules import limit\n",
                "alpha/rules.py": "import beta.routes\n",
                "beta/__init__.py": "",
                "beta/routes.py": "from alpha import models\n",
            },
            ["alpha.models", "alpha.rules", "beta.routes"],
        ),
    ],
)
def test_the_checker_finds_an_injected_cycle(
    tmp_path: Path, files: dict[str, str], cycle: list[str]
) -> None:
    _tree(tmp_path, files)
    imports, _ = scan(tmp_path, ("alpha", "beta"))
    assert cycles(imports) == [cycle]


def test_the_checker_finds_a_hidden_import_and_a_wrong_direction(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "alpha/__init__.py": "",
            "alpha/services.py": "def f():\n    from beta import services\n    return services\n",
            "beta/__init__.py": "",
            "beta/services.py": "from alpha import services\n",
        },
    )
    imports, _ = scan(tmp_path, ("alpha", "beta"))
    assert cycles(imports) == []  # the import inside the function hides it from Python...
    problems = violations(imports, {"alpha": set(), "beta": set()})
    assert problems == [  # ...not from this check
        "alpha/services.py:2 imports beta.services inside a function",
        "beta/services.py:1 imports alpha.services: beta may not depend on alpha",
    ]

"""The package's shape: no import cycles (function-level imports included), and every engine module importable
on its own, whatever was imported before it."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "lakehouse"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The lakehouse modules `name` imports when it runs: at the top or inside functions, but not under
    `if TYPE_CHECKING:` (types only). `from pkg import sub` depends on `pkg.sub`, not on all of `pkg`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for n in child.orelse:
                    visit(n)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = name.rsplit(".", child.level)[0]
                    base = f"{parent}.{base}" if base else parent
                subs = [f"{base}.{a.name}" for a in child.names if f"{base}.{a.name}" in modules]
                found.update(subs)
                if len(subs) < len(child.names):
                    found.add(base)
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules and m != name}


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_each_engine_module_imports_alone() -> None:
    """Each module in a fresh process of its own (forked after the third-party packages are loaded, which
    cannot hide an import-order dependency between our modules)."""
    names = sorted(n for n in _modules() if n.startswith("lakehouse.engine"))
    script = textwrap.dedent(f"""
        import importlib, os, sys
        import duckdb, numpy, pyarrow, pydantic, httpx, usearch.index, sqlglot, orjson, numba  # noqa
        failed = []
        for name in {names!r}:
            pid = os.fork()
            if pid == 0:
                try:
                    importlib.import_module(name)
                except BaseException as exc:
                    print(name, type(exc).__name__, exc, file=sys.stderr)
                    os._exit(1)
                os._exit(0)
            if os.waitpid(pid, 0)[1] != 0:
                failed.append(name)
        print(",".join(failed))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"modules that fail to import alone: {out.stdout.strip()}\n{out.stderr}"

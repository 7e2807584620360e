"""The package's import graph, read from the sources with ast: no cycle between its packages, and the
arrows point one way: data/, hht/ and models/ know nothing of what uses them (training/, svm/, classic/,
evaluation/, prediction, adaptation/), and neither reporting/ nor classic/ (each shared by several of those)
imports any of them."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "src" / "semg_hht"
USERS = {"training", "svm", "evaluation", "prediction", "adaptation", "classic"}
RULES = {"data": USERS | {"reporting"}, "hht": USERS | {"reporting"}, "models": USERS | {"reporting"}}
RULES["reporting"] = USERS
RULES["classic"] = USERS - {"classic"}


def unit(module: str) -> str:
    """semg_hht.data.splits -> data; semg_hht.prediction -> prediction (a top-level module is its own unit)."""
    return module.split(".")[1] if module.count(".") else module


def imports(path: Path) -> set[str]:
    """Every semg_hht module the file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("semg_hht.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("semg_hht."):
            found.add(node.module)
    return found


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """unit -> the other units its modules import."""
    edges: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        name = unit(".".join(("semg_hht", *path.relative_to(root).with_suffix("").parts)))
        if name in ("__init__", "__main__"):
            continue
        edges.setdefault(name, set()).update(unit(m) for m in imports(path) if unit(m) != name)
    return edges


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first unit repeated at the end), or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def wrong_arrows(edges: dict[str, set[str]]) -> list[str]:
    return [f"{src} -> {dst}" for src, banned in RULES.items() for dst in sorted(edges.get(src, set()) & banned)]


def test_the_graph_is_read_from_the_sources():
    edges = graph()
    assert {"data", "hht", "models", "training", "svm", "evaluation", "reporting", "prediction"} <= set(edges)
    assert {"data", "reporting", "models"} <= edges["training"]


def test_no_cycle_between_packages():
    assert cycle(graph()) is None


def test_arrows_point_from_the_users_to_what_they_use():
    assert wrong_arrows(graph()) == []


def test_the_checks_catch_a_cycle_and_a_wrong_arrow(tmp_path):
    for name, text in {
        "data/a.py": "from semg_hht.training.x import f\n",
        "training/x.py": "def f():\n    import semg_hht.data.a\n",
        "reporting/r.py": "from semg_hht.svm import fit\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges = graph(tmp_path)
    assert cycle(edges) in (["data", "training", "data"], ["training", "data", "training"])
    assert wrong_arrows(edges) == ["data -> training", "reporting -> svm"]


def test_the_readme_layout_names_every_package_and_top_level_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :].split("```")[1]
    named = {line.split()[0] for line in layout.splitlines() if line.startswith(("src/", "reference/", "bench/"))}
    named |= {f"src/semg_hht/{m}" for m in ("config_check.py",)}  # shares config.py's line
    tree = {
        f"src/semg_hht/{p.name}" + ("/" if p.is_dir() else "") for p in PACKAGE.iterdir() if p.name != "__pycache__"
    }
    tree -= {"src/semg_hht/__init__.py"}
    assert tree == {n for n in named if n.startswith("src/")}
    assert all((ROOT / n).exists() for n in named)

"""The client never imports the server side: a device runs without server/ and strategy/."""

import ast
from pathlib import Path

from support.paths import ROOT

FORBIDDEN = ("server", "strategy")


def _imported(path: Path) -> set[str]:
    """Return the top-level packages ``path`` imports anywhere (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_client_imports_neither_server_nor_strategy():
    files = sorted((ROOT / "client").rglob("*.py"))
    assert files
    found = {str(p.relative_to(ROOT)): sorted(_imported(p) & set(FORBIDDEN)) for p in files}
    assert {path: packages for path, packages in found.items() if packages} == {}

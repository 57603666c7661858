"""Locate the Flower app directory, or build one from the installed packages."""

from __future__ import annotations

import importlib.util
import shutil
import tomllib
from pathlib import Path

import tomli_w

import cli
from task.config import DEFAULTS

# The packages the ServerApp and the ClientApp import.
APP_PACKAGES = ("client", "scheduler", "server", "strategy", "task")
COMPONENTS = {"serverapp": "server.app:app", "clientapp": "client.app:app"}


def _is_flower_app(directory: Path) -> bool:
    """Return whether ``directory`` holds a pyproject.toml with a ``[tool.flwr.app]`` table."""
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return False
    return "app" in tomllib.loads(pyproject.read_text()).get("tool", {}).get("flwr", {})


def project_dir() -> Path | None:
    """Return the source checkout holding this package (clone or editable install), if any."""
    root = Path(cli.__file__).resolve().parent.parent
    return root if _is_flower_app(root) else None


def pyproject_text() -> str:
    """Return a minimal pyproject.toml for the app: components and run-config defaults."""
    return tomli_w.dumps(
        {
            "build-system": {"requires": ["hatchling"], "build-backend": "hatchling.build"},
            "project": {"name": "feel", "version": "0.0.0", "dependencies": []},
            "tool": {
                "hatch": {"build": {"targets": {"wheel": {"packages": list(APP_PACKAGES)}}}},
                "flwr": {
                    "app": {"publisher": "feel", "components": COMPONENTS, "config": DEFAULTS}
                },
            },
        }
    )


def build_app_dir(target: Path) -> Path:
    """Write a Flower app into ``target``: the minimal pyproject.toml and the packages' sources."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "pyproject.toml").write_text(pyproject_text())
    for name in APP_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"package {name!r} of the Flower app is not installed")
        shutil.copytree(
            spec.submodule_search_locations[0],
            target / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    return target

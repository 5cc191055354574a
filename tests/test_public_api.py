"""askdesk uses only the public API of slack_sdk, slack_bolt and SQLAlchemy: no module imports a private
(leading underscore) name of theirs, reads one off a module or class of theirs, or overrides a private
method of one of their classes. Upgrading within the pinned ranges then cannot break a hidden hook."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage", "slacksim", "bench")
LIBRARIES = ("slack_sdk", "slack_bolt", "sqlalchemy", "sqlmodel")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _library(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in LIBRARIES


def violations(path: Path) -> list[str]:
    """Where `path` touches a private name of one of LIBRARIES."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []
    imported: dict[str, tuple[str, str | None]] = {}  # local name -> (module, attribute or None)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _library(alias.name):
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"{path.name}:{node.lineno} imports {alias.name}")
                    imported[(alias.asname or alias.name).split(".")[0]] = (alias.name, None)
        elif isinstance(node, ast.ImportFrom) and _library(node.module):
            module = node.module or ""
            if any(_private(part) for part in module.split(".")):
                found.append(f"{path.name}:{node.lineno} imports from {module}")
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{path.name}:{node.lineno} imports {module}.{alias.name}")
                imported[alias.asname or alias.name] = (module, alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in imported):
            found.append(f"{path.name}:{node.lineno} reads {node.value.id}.{node.attr}")
        if isinstance(node, ast.ClassDef):
            bases = [imported[b.id] for b in node.bases if isinstance(b, ast.Name) and b.id in imported]
            for module, attribute in bases:
                if attribute is None:
                    continue
                base = getattr(importlib.import_module(module), attribute)
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and _private(item.name) and hasattr(base, item.name):
                        found.append(f"{path.name}:{item.lineno} overrides {attribute}.{item.name}")
    return found


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_private_names_of_the_libraries() -> None:
    problems = [v for path in source_files() for v in violations(path)]
    assert problems == []


@pytest.mark.parametrize("code, expected", [
    ("from slack_sdk.web.base_client import _parse_web_class_objects", "imports"),
    ("from sqlalchemy import orm\norm._mapper_registries", "reads"),
    ("from slack_sdk.http_retry import RateLimitErrorRetryHandler\n"
     "class H(RateLimitErrorRetryHandler):\n    def _can_retry(self):\n        return True\n", "overrides"),
    ("import slack_sdk.web._private_thing", "imports"),
])
def test_the_check_catches_private_use(tmp_path: Path, code: str, expected: str) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(code)
    assert any(expected in v for v in violations(sample))


def test_own_private_helpers_are_fine(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from slack_sdk import WebClient\nclass C(WebClient):\n    def _mine(self):\n        return 1\n")
    assert violations(sample) == []

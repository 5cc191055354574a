"""The shape of the code: no import cycles in the product packages, and one explicit table of jobs."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.runtime.jobs import JOBS
from bot.runtime.outbox import JobKind, Outbox, PermanentFailure
from storage import jobs as job_queries
from storage.jobs import ClaimedJob
from storage.models import Job
from storage.session import session_scope
from tests.conftest import Harness

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("bot", "handlers", "storage")


def product_modules() -> dict[str, Path]:
    modules = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every product module `name` imports, wherever the import statement is (function level and
    `if TYPE_CHECKING:` included): `from a import b` names the module a.b when there is one, else a."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")[: len(name.split(".")) - (path.name != "__init__.py")]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
    return (found & modules.keys()) - {name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_sees_a_cycle_through_three_modules() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_product_packages_have_no_import_cycle() -> None:
    modules = product_modules()
    assert {"bot.app", "bot.runtime.outbox", "bot.runtime.deps", "handlers", "storage.models"} <= modules.keys()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert "bot.runtime.deps" in graph["bot.runtime.jobs"]  # the graph does see imports
    assert cycles(graph) == []


def enqueued_kinds() -> set[str]:
    """The job kinds the product code enqueues: `kind=`/`job_kind=` arguments, literal or a module constant."""
    kinds: set[str] = set()
    for name, path in product_modules().items():
        module: Any = None
        for node in ast.walk(ast.parse(path.read_text())):
            for keyword in node.keywords if isinstance(node, ast.Call) else ():
                if keyword.arg not in ("kind", "job_kind"):
                    continue
                if isinstance(keyword.value, ast.Constant):
                    kinds.add(keyword.value.value)
                elif isinstance(keyword.value, ast.Name) and keyword.value.id.isupper():
                    module = module or importlib.import_module(name)
                    kinds.add(getattr(module, keyword.value.id))
    return kinds


def test_every_job_kind_that_is_enqueued_has_an_entry_in_the_job_table() -> None:
    kinds = enqueued_kinds()
    assert {"post_request", "render", "survey", "digest"} <= kinds
    assert kinds <= JOBS.keys()


def test_the_outbox_runs_only_the_table_it_was_given(h: Harness) -> None:
    """A job kind missing from the table fails for good; a kind's `failed` is told the reason."""
    failures: list[tuple[dict[str, Any], str]] = []

    def refuse(deps: Any, payload: dict[str, Any], job: ClaimedJob) -> None:
        raise PermanentFailure(f"refused {payload['n']}")

    def tell(deps: Any, payload: dict[str, Any], reason: str) -> None:
        failures.append((payload, reason))

    outbox = Outbox(h.deps, {"probe": JobKind(refuse, tell)}, workers=1, live_threads=1)
    try:
        with session_scope(h.deps.engine) as session:
            ids = [job_queries.enqueue(session, kind="probe", key="probe:1", payload={"n": 1}, due_at=h.deps.now()),
                   job_queries.enqueue(session, kind="render", key="render:x", payload={}, due_at=h.deps.now())]
        outbox.kick(ids)
    finally:
        outbox.stop()
    with session_scope(h.deps.engine) as session:
        rows = {job.kind: job for job in session.exec(select(Job).where(Job.id.in_(ids)))}  # type: ignore[union-attr]
    assert rows["probe"].status == "failed" and rows["probe"].last_error == "refused 1"
    assert rows["render"].status == "failed" and rows["render"].last_error == "no handler for job kind 'render'"
    assert failures == [({"n": 1}, "refused 1")]


def test_listener_modules_bind_module_level_functions_with_register_app_only() -> None:
    """Listeners get `deps` from the Bolt context (bot.app's middleware), so `register` needs only the app."""
    import handlers

    modules = [handlers.actions, handlers.admin, handlers.commands, handlers.events, handlers.feedback,
               handlers.home, handlers.shortcuts, handlers.views]
    assert all(list(inspect.signature(module.register).parameters) == ["app"] for module in modules)

"""`askdesk` as an operator meets it, in real processes: read-only commands that never create or migrate
a database, one-line errors (no traceback) for a bad database URL, an unreachable database, a port in
use and a refused token, the start-up warnings, SIGHUP reloads, `--workers N` replacing a dead worker,
and migrations that N processes starting together apply once."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, text

from bot.runtime.server import make_wsgi_app
from bot.runtime.workers import WorkerBoard
from slacksim.driver import SlackDriver
from slacksim.simulator import SlackSimulator
from storage.engine import make_engine
from storage.migrate import current_revision, upgrade
from tests.conftest import (
    BOT_TOKEN,
    DAVE,
    FINANCE_CH,
    IT_CH,
    PG_URL,
    SIGNING_SECRET,
    TEST_CONFIG,
    write_config,
)
from tests.test_config_cli import _fresh_database
from tests.test_socket_mode import SocketModeApp

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
LEGAL_CH = "C0LEGAL"


def env_for(tmp_path: Path, *, db_url: str, sim: SlackSimulator | None = None, config: dict[str, Any] | None = None,
            **extra: str) -> dict[str, str]:
    """An environment for `python -m bot`: nothing leaks in from outside, the config file is written."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "ASKDESK_", "DATABASE_URL", "PORT", "LOG_LEVEL"))}
    config_file = write_config(tmp_path / "askdesk.toml", config or {"teams": TEST_CONFIG["teams"]})
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", ASKDESK_CONFIG=str(config_file), DATABASE_URL=db_url,
               SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, LOG_LEVEL="INFO")
    if sim is not None:
        env["SLACK_API_URL"] = sim.base_url
    env.update(extra)
    return env


def askdesk(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def one_line_error(out: subprocess.CompletedProcess, code: int) -> str:
    """The single `askdesk: ...` line on stderr of a command that failed with `code`, no traceback."""
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("askdesk: "), out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Askdesk(SocketModeApp):
    """`askdesk run --http ...` in a subprocess; its output goes to a file, readable while it runs."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        super().__init__(env, cwd, "--http", "--host", "127.0.0.1", "--port", str(self.port), *args,
                         log_name=f"askdesk-{self.port}.log")

    def health(self) -> int | None:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return None

    def healthy(self) -> None:
        self.until(lambda: self.health() == 200, timeout=60, what="/healthz 200")

    def driver(self, sim: SlackSimulator) -> SlackDriver:
        return SlackDriver(self.base + "/slack/events", SIGNING_SECRET, sim)

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return sorted(int(pid) for pid in children)

    def terminate(self) -> int:
        """SIGTERM; the exit code once it has drained."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)

    def __enter__(self) -> Askdesk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ask(server: Askdesk, sim: SlackSimulator, command: str, question: str, channel: str) -> None:
    resp = server.driver(sim).slash(command, question, user_id=DAVE)
    assert resp.status == 200, resp.body
    sim.wait_for(lambda: any(question in json.dumps(m.get("blocks")) for m in sim.messages(channel)), timeout=15)


# ---------------------------------------------------------------------------------------------
# read-only commands never create or migrate a database
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["status"], ["digest", "--json"], ["digest", "--dry-run"]])
def test_read_only_commands_in_an_empty_folder_create_nothing(tmp_path: Path, command: list[str]) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    env = env_for(tmp_path, db_url="sqlite:///askdesk.db")
    line = one_line_error(askdesk(command, env, folder), 1)
    assert "askdesk.db does not exist" in line and "askdesk db upgrade" in line
    assert list(folder.iterdir()) == []


def test_an_older_schema_is_named_and_never_migrated_by_read_only_commands(tmp_path: Path,
                                                                          pg_database: str | None) -> None:
    url = _fresh_database(tmp_path, pg_database)
    upgrade(url, "0001")
    env = env_for(tmp_path, db_url=url)
    for command in (["status"], ["digest", "--json"], ["run", "--http", "--no-migrate", "--port", str(free_port())]):
        line = one_line_error(askdesk(command, env, tmp_path), 1)
        assert "is at schema revision 0001" in line and "run `askdesk db upgrade`" in line, line
    engine = make_engine(url)
    assert current_revision(engine) == "0001"
    engine.dispose()
    out = askdesk(["db", "upgrade"], env, tmp_path)
    assert out.returncode == 0 and "is at revision" in out.stdout
    assert "Running upgrade" not in out.stderr + out.stdout  # Alembic's INFO lines stay quiet at LOG_LEVEL=INFO
    assert "Context impl" not in out.stderr + out.stdout
    assert askdesk(["status"], env, tmp_path).returncode == 0


def test_an_empty_database_is_named(tmp_path: Path) -> None:
    (tmp_path / "blank.db").write_bytes(b"")  # a file SQLite opens, without tables
    line = one_line_error(askdesk(["status"], env_for(tmp_path, db_url="sqlite:///blank.db"), tmp_path), 1)
    assert "has no askdesk tables yet; run `askdesk db upgrade`" in line


# ---------------------------------------------------------------------------------------------
# one line, no traceback
# ---------------------------------------------------------------------------------------------
def test_postgres_scheme_and_unreachable_database(tmp_path: Path) -> None:
    env = env_for(tmp_path, db_url="postgres://desk:hunter22@db.example/askdesk")
    line = one_line_error(askdesk(["status"], env, tmp_path), 2)
    assert "DATABASE_URL" in line and "postgresql+psycopg://" in line and "hunter22" not in line
    port = free_port()  # nothing listens there
    env = env_for(tmp_path, db_url=f"postgresql+psycopg://desk:hunter22@127.0.0.1:{port}/askdesk")
    for command in (["status"], ["db", "upgrade"], ["run", "--http", "--port", str(free_port())]):
        line = one_line_error(askdesk(command, env, tmp_path), 1)
        assert f"cannot use the database postgresql+psycopg://desk:***@127.0.0.1:{port}/askdesk" in line, line
        assert "refused" in line.lower() and "hunter22" not in line


def test_a_port_in_use_is_one_line(sim: SlackSimulator, db_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = env_for(tmp_path, db_url=db_url, sim=sim)
        for workers in ("1", "2"):
            line = one_line_error(askdesk(["run", "--http", "--host", "127.0.0.1", "--port", str(port),
                                           "--workers", workers], env, tmp_path), 1)
            assert f"port {port} on 127.0.0.1 is already in use" in line


def test_manifest_warns_when_the_request_url_is_a_placeholder(tmp_path: Path) -> None:
    env = env_for(tmp_path, db_url="sqlite:///unused.db")
    placeholder = askdesk(["manifest"], env, tmp_path)
    assert placeholder.returncode == 0 and "askdesk.example.com" in placeholder.stdout
    assert "warning: no --request-url given" in placeholder.stderr and "placeholder" in placeholder.stderr
    for args in (["--request-url", "https://desk.example.org/slack/events"], ["--socket"]):
        real = askdesk(["manifest", *args], env, tmp_path)
        assert real.returncode == 0 and real.stderr == "" and "askdesk.example.com" not in real.stdout
    assert not list(tmp_path.glob("*.db"))


# ---------------------------------------------------------------------------------------------
# start-up checks against Slack
# ---------------------------------------------------------------------------------------------
def test_a_refused_bot_token_stops_run_at_start(sim: SlackSimulator, db_url: str, tmp_path: Path) -> None:
    sim.invalid_tokens.add(BOT_TOKEN)
    out = askdesk(["run", "--http", "--host", "127.0.0.1", "--port", str(free_port())],
                  env_for(tmp_path, db_url=db_url, sim=sim), tmp_path)
    line = one_line_error(out, 2)
    assert "SLACK_BOT_TOKEN" in line and "Slack refused the token (invalid_auth)" in line and BOT_TOKEN not in line
    assert not sim.messages(FINANCE_CH)


def test_run_warns_once_for_each_triage_channel_the_bot_is_not_in(sim: SlackSimulator, db_url: str,
                                                                   tmp_path: Path) -> None:
    sim.add_channel(IT_CH, name="it-triage", members=["U0CAROL"], bot_is_member=False)
    config = {"teams": [*TEST_CONFIG["teams"], {"slug": "it2", "name": "IT again", "channel": IT_CH},
                        {"slug": "legal", "name": "Legal", "channel": "C0NOWHERE"}]}
    with Askdesk(env_for(tmp_path, db_url=db_url, sim=sim, config=config), tmp_path) as server:
        server.healthy()
        output = server.output()
        assert server.terminate() == 0
    warnings = [line for line in output.splitlines() if "WARNING" in line and "triage channel" in line]
    assert len(warnings) == 2, output
    assert f"triage channel {IT_CH} of team it: the bot is not a member" in warnings[0]
    assert "triage channel C0NOWHERE of team legal: not found" in warnings[1]
    assert FINANCE_CH not in "".join(warnings)
    checked = [c.args.get("channel") for c in sim.calls if c.method == "conversations.info"]
    assert sorted(checked) == sorted([FINANCE_CH, IT_CH, "C0HR", "C0NOWHERE"])  # each channel once


# ---------------------------------------------------------------------------------------------
# SIGHUP
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sighup_reloads_a_valid_config_and_keeps_the_running_one_otherwise(
        sim: SlackSimulator, db_url: str, tmp_path: Path, workers: str) -> None:
    sim.add_channel(LEGAL_CH, name="legal-triage", members=["U0ALICE"])
    env = env_for(tmp_path, db_url=db_url, sim=sim)
    config = Path(env["ASKDESK_CONFIG"])
    with Askdesk(env, tmp_path, "--workers", workers) as server:
        server.healthy()
        pids = server.workers()
        config.write_text(config.read_text().replace('slug = "it"', 'slugg = "it"'))  # a typo
        server.proc.send_signal(signal.SIGHUP)
        server.until(lambda: "configuration not reloaded" in server.output(), timeout=30, what="the refusal")
        assert "key 'teams[1].slugg': unknown key; did you mean 'slug'?" in server.output()
        ask(server, sim, "/ask-finance", "Still here after a bad reload?", FINANCE_CH)
        assert server.workers() == pids  # nothing was replaced

        write_config(config, {"teams": [*TEST_CONFIG["teams"], {"slug": "legal", "name": "Legal",
                                                                 "channel": LEGAL_CH}]})
        server.proc.send_signal(signal.SIGHUP)
        if workers == "1":
            server.until(lambda: "configuration reloaded (4 teams)" in server.output(), timeout=30, what="the reload")
        else:
            server.until(lambda: len(now := server.workers()) == 2 and not set(now) & set(pids)
                         and server.health() == 200, timeout=60, what="two new workers, the old ones gone")
        ask(server, sim, "/ask-legal", "Can we sign this NDA?", LEGAL_CH)
        ask(server, sim, "/ask-finance", "And finance still works?", FINANCE_CH)
        assert server.terminate() == 0
    output = server.output()
    assert "Traceback" not in output and SIGNING_SECRET not in output and BOT_TOKEN not in output


# ---------------------------------------------------------------------------------------------
# --workers N
# ---------------------------------------------------------------------------------------------
def test_a_killed_worker_is_replaced_and_healthz_says_so_meanwhile(sim: SlackSimulator, db_url: str,
                                                                   tmp_path: Path) -> None:
    with Askdesk(env_for(tmp_path, db_url=db_url, sim=sim), tmp_path, "--workers", "2") as server:
        server.healthy()
        before = server.until(lambda: len(server.workers()) == 2 and server.workers(), timeout=30, what="two workers")
        ask(server, sim, "/ask-finance", "Before the crash?", FINANCE_CH)
        os.kill(before[0], signal.SIGKILL)
        seen: list[int | None] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen.append(server.health())
            now = server.workers()
            if len(now) == 2 and before[0] not in now and seen[-1] == 200 and 503 in seen:
                break
            time.sleep(0.005)
        after = server.workers()
        assert len(after) == 2 and before[0] not in after and before[1] in after, (before, after)
        assert 503 in seen, seen  # the survivor did not claim health while its sibling was missing
        assert seen[-1] == 200
        for i in range(6):  # both workers serve (the kernel hands each connection to either)
            ask(server, sim, "/ask-finance", f"After the crash {i}?", FINANCE_CH)
        assert server.terminate() == 0
    output = server.output()
    assert "was sent SIGKILL" in output and "Traceback" not in output
    posts = [m for m in sim.messages(FINANCE_CH) if not m.get("thread_ts")]
    assert len(posts) == 7  # every request posted exactly once


def vm_size(pid: int) -> int:
    """Bytes of address space the process has mapped (its VmSize)."""
    line = next(li for li in Path(f"/proc/{pid}/status").read_text().splitlines() if li.startswith("VmSize:"))
    return int(line.split()[1]) * 1024


def test_a_worker_that_cannot_start_is_tried_again_while_the_other_serves(sim: SlackSimulator, db_url: str,
                                                                         tmp_path: Path) -> None:
    """Out of memory when a dead worker is replaced: the replacement fails to start, the master logs
    why at ERROR and tries again after a growing pause, the other worker keeps serving (/healthz 503
    meanwhile), and once memory is back the replacement starts: plain gunicorn stops the whole server."""
    with Askdesk(env_for(tmp_path, db_url=db_url, sim=sim), tmp_path, "--workers", "2") as server:
        server.healthy()
        before = server.until(lambda: len(server.workers()) == 2 and server.workers(), timeout=30, what="two workers")
        master = server.proc.pid
        limits = resource.prlimit(master, resource.RLIMIT_AS)
        # A forked worker inherits the limit: no room for its threads; the idle master needs none.
        resource.prlimit(master, resource.RLIMIT_AS, (vm_size(master) + 4 * 2**20, limits[1]))
        try:
            os.kill(before[0], signal.SIGKILL)
            server.until(lambda: "a worker failed to start (2 in a row)" in server.output(), timeout=30,
                         what="two failed starts")
            assert server.workers() == [before[1]] and server.health() == 503
            ask(server, sim, "/ask-finance", "Served by the other worker?", FINANCE_CH)
        finally:
            resource.prlimit(master, resource.RLIMIT_AS, limits)
        after = server.until(lambda: len(now := server.workers()) == 2 and server.health() == 200 and now,
                             timeout=30, what="the replacement")
        assert before[1] in after
        ask(server, sim, "/ask-finance", "And with both again?", FINANCE_CH)
        assert server.terminate() == 0
    output = server.output()
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert any("could not start: " in line for line in errors), output
    assert any("a worker failed to start (1 in a row); 1 of 2 workers running; next try in 1 s" in line
               for line in errors), output
    assert "next try in 2 s" in output and "Traceback" not in output, output


def test_worker_board_counts_booted_workers_and_healthz_follows_it(engine: Any) -> None:
    board = WorkerBoard(2)
    first, second = board.reserve(), board.reserve()
    assert board.missing() == 2
    board.mark_ready(first, 101)
    board.mark_ready(second, 102)
    assert board.missing() == 0
    board.release(first)  # reaped
    assert board.missing() == 1
    replacement = board.reserve()
    assert replacement != second and board.missing() == 1
    board.mark_ready(replacement, 103)
    assert board.missing() == 0

    class NoApp:  # only /healthz is asked for
        pass

    missing = [1]
    wsgi = make_wsgi_app(NoApp(), engine, workers_missing=lambda: missing[0])  # type: ignore[arg-type]
    answers: list[str] = []

    def get() -> dict[str, Any]:
        body = b"".join(wsgi({"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"},
                             lambda status, headers: answers.append(status)))
        return json.loads(body)

    assert get() == {"ok": False, "workers_missing": 1} and answers[-1].startswith("503")
    missing[0] = 0
    assert get()["ok"] is True and answers[-1].startswith("200")


# ---------------------------------------------------------------------------------------------
# migrations under a lock
# ---------------------------------------------------------------------------------------------
def test_instances_starting_together_migrate_once(tmp_path: Path, pg_database: str | None) -> None:
    """Four `askdesk db upgrade` (the start-up path of `askdesk run`) at once on a fresh database: without
    the lock two of them create the same tables and one fails; with it every one succeeds."""
    url = _fresh_database(tmp_path, pg_database)
    env = env_for(tmp_path, db_url=url)
    procs = [subprocess.Popen([sys.executable, "-m", "bot", "db", "upgrade"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0 and "is at revision" in out and "Traceback" not in err, (code, out, err)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()
    assert PG_URL or (tmp_path / "migrate.db-migrate").exists()  # SQLite: the lock file next to the database

"""Configuration errors, the manifest, the command line (`askdesk run` for real), migrations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from sqlalchemy import text

from bot.cli.manifest import build_manifest
from bot.config import ConfigError, config_schema, load_settings, parse_config, parse_duration
from slacksim.driver import SlackDriver
from slacksim.simulator import SlackSimulator
from storage.engine import make_engine
from storage.migrate import current_revision, upgrade
from tests.conftest import BOT_TOKEN, DAVE, FINANCE_CH, SIGNING_SECRET, TEST_CONFIG, make_settings, write_config

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


def config_with(**changes: Any) -> dict[str, Any]:
    cfg = json.loads(json.dumps(TEST_CONFIG))
    for dotted, value in changes.items():
        node = cfg
        *path, last = dotted.split("__")
        for part in path:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[last] = value
    return cfg


@pytest.mark.parametrize("changes, key, expected", [
    ({"teams": []}, "teams", "at least one [[teams]]"),
    ({"teams__0__first_response_sla": "30 minutes"}, "teams[0].first_response_sla", "duration"),
    ({"teams__1__channel": "#it-help"}, "teams[1].channel", "channel ID"),
    ({"teams__0__slug": "Fin Ance"}, "teams[0].slug", "lowercase"),
    ({"teams__1__slug": "finance"}, "teams[1].slug", "unique"),
    ({"workspace__timezone": "Mars/Olympus"}, "workspace.timezone", "IANA"),
    ({"workspace__admins": ["bob"]}, "workspace.admins[0]", "user ID"),
    ({"surveys": {"anonymity_threshold": 2}}, "surveys.anonymity_threshold", "at least 3"),
    ({"surveys": {"working_hours": "18:00-09:00"}}, "surveys.working_hours", "09:00-18:00"),
    ({"surveys": {"working_days": "mon-funday"}}, "surveys.working_days", "mon-fri"),
    ({"ratings": {"+1": 7}}, "ratings.+1", "1 to 5"),
    ({"digest": {"weekday": "someday"}}, "digest.weekday", "weekday"),
    # misspelt keys name the nearest valid key
    ({"workspace__timezon": "UTC"}, "workspace.timezon", "unknown key; did you mean 'timezone'?"),
    ({"teams__1__first_responce_sla": "1h"}, "teams[1].first_responce_sla",
     "unknown key; did you mean 'first_response_sla'?"),
    ({"surveys": {"dealy": "1h"}}, "surveys.dealy", "unknown key; did you mean 'delay'?"),
    ({"sheduler": {"tick": "1s"}}, "sheduler", "unknown section; did you mean 'scheduler'?"),
    # ranges
    ({"scheduler": {"workers": 0}}, "scheduler.workers", "at least 1, got 0"),
    ({"scheduler": {"batch_size": 0}}, "scheduler.batch_size", "at least 1, got 0"),
    ({"scheduler": {"workers": "4"}}, "scheduler.workers", "integer"),
    ({"scheduler": {"tick": 0.05}}, "scheduler.tick", "at least 0.1 seconds"),
    ({"scheduler": {"tick": "0s"}}, "scheduler.tick", "longer than zero"),
    ({"scheduler": {"lease": "0m"}}, "scheduler.lease", "longer than zero"),
    ({"surveys": {"delay": "0h"}}, "surveys.delay", "longer than zero"),
    ({"teams__0__resolution_sla": "0d"}, "teams[0].resolution_sla", "at least one minute"),  # SLAs (issue 15)
    ({"surveys": {"min_days_between": -1}}, "surveys.min_days_between", "at least 0"),
    ({"surveys": {"enabled": "yes"}}, "surveys.enabled", "boolean"),
    # weekday names are exact
    ({"digest": {"weekday": "monday"}}, "digest.weekday", "one of mon, tue"),
    ({"digest": {"weekday": "Mon"}}, "digest.weekday", "one of mon, tue"),
    ({"surveys": {"working_days": "Mon-Fri"}}, "surveys.working_days", "mon-fri"),
    ({"teams__0__digest_weekday": "fr"}, "teams[0].digest_weekday", "one of mon, tue"),
    # more than 100 categories are rejected, not cut
    ({"teams__0__categories": [f"c{i}" for i in range(101)]}, "teams[0].categories",
     "at most 100 categories (a Slack menu shows no more), got 101"),
    ({"teams__0__categories": ["ok", ""]}, "teams[0].categories[1]", "non-empty"),
    ({"teams__0__command": "ask"}, "teams[0].command", "slash command"),
    ({"teams__2__command": "/ask-finance"}, "teams[2].command", "unique"),
    ({"workspace": "UTC"}, "workspace", "expected a table"),
])
def test_config_errors_name_file_key_and_expectation(changes: dict, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("askdesk.toml", config_with(**changes))
    message = str(err.value)
    assert message.startswith(f"askdesk.toml: key '{key}': ") and expected in message, message
    assert "\n" not in message


def test_a_missing_key_and_several_problems_are_one_line() -> None:
    config = config_with(teams__0__channel="nope", surveys={"dealy": "1h", "delay": "x"})
    del config["teams"][1]["channel"]
    with pytest.raises(ConfigError) as err:
        parse_config("askdesk.toml", config)
    message = str(err.value)
    assert message.startswith("askdesk.toml: key 'surveys.dealy': unknown key; did you mean 'delay'?")
    assert message.endswith("(and 3 more problems)") and "\n" not in message
    with pytest.raises(ConfigError, match=r"key 'teams\[1\]\.channel': required \(the triage channel's ID\)"):
        parse_config("askdesk.toml", {"teams": [TEST_CONFIG["teams"][0], {"slug": "it"}]})
    with pytest.raises(ConfigError, match=r"^x.toml: key 'teams\[0\]\.chanel': unknown key; did you mean 'channel'\? "
                       r"\(and 1 more problem\)$"):  # the misspelling first: it explains the missing key
        parse_config("x.toml", {"teams": [{"slug": "it", "chanel": "C0IT"}]})


def test_accepted_values_are_read_into_settings() -> None:
    parsed = parse_config("x.toml", config_with(
        scheduler={"tick": 0.5, "workers": 1, "batch_size": 1}, surveys={"working_days": "fri-mon", "delay": "1h30m"},
        ratings={":tada:": 5}, teams__0__categories=[f"c{i}" for i in range(100)]))
    assert parsed["scheduler"].tick.total_seconds() == 0.5 and parsed["scheduler"].workers == 1
    assert parsed["surveys"].working_days == (0, 4, 5, 6) and parsed["surveys"].delay.total_seconds() == 5400
    assert parsed["ratings"] == {"tada": 5} and len(parsed["teams"][0].categories) == 100
    assert parsed["teams"][2].command == "/ask-people" and parsed["teams"][1].command == "/ask-it"
    assert parsed["teams"][1].name == "IT" and parsed["workspace"].tz.key == "Europe/Berlin"


@pytest.mark.parametrize("variables, expected", [
    ({"LOG_LEVEL": "verbose"}, "environment: key 'LOG_LEVEL': expected one of DEBUG, INFO, WARNING, ERROR, "
                               "got 'verbose'"),
    ({"DATABASE_URL": "postgres://desk:hunter22@db/askdesk"},
     "environment: key 'DATABASE_URL': postgres:// names no driver askdesk ships; write postgresql+psycopg://"),
    ({"DATABASE_URL": "postgresql://desk@db/askdesk"}, "write postgresql+psycopg://user:pass@host/db"),
    ({"PORT": "70000"}, "environment: key 'PORT': expected a TCP port number (1-65535), got '70000'"),
])
def test_environment_errors(tmp_path: Path, variables: dict[str, str], expected: str) -> None:
    config = write_config(tmp_path / "askdesk.toml", {"teams": TEST_CONFIG["teams"]})
    with pytest.raises(ConfigError) as err:
        load_settings({"ASKDESK_CONFIG": str(config), **variables}, dotenv_path=None)
    assert expected in str(err.value) and "hunter22" not in str(err.value)


def test_unknown_section_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown section; valid keys: workspace, teams, ratings"):
        parse_config("x.toml", {**TEST_CONFIG, "slack": {}})
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings({"ASKDESK_CONFIG": str(tmp_path / "missing.toml")}, dotenv_path=None)
    bad = tmp_path / "bad.toml"
    bad.write_text("[workspace\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"ASKDESK_CONFIG": str(bad)}, dotenv_path=None)


def test_durations() -> None:
    assert parse_duration("30m").total_seconds() == 1800
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_duration("2d").days == 2 and parse_duration("1w").days == 7
    for bad in ("", "soon", "30 minutes", "5x"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_environment_wins_over_dotenv_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "askdesk.toml").write_text('[[teams]]\nslug = "it"\nchannel = "C0IT"\n')
    dotenv = tmp_path / ".env"
    dotenv.write_text("SLACK_BOT_TOKEN=xoxb-from-dotenv\nPORT=4000\nLOG_LEVEL=debug\nDATABASE_URL=\nOTHER=1\n")
    settings = load_settings({"ASKDESK_CONFIG": str(tmp_path / "askdesk.toml"), "PORT": "5000"},
                             dotenv_path=str(dotenv))
    assert settings.bot_token == "xoxb-from-dotenv" and settings.port == 5000 and settings.log_level == "DEBUG"
    assert settings.database_url == "sqlite:///askdesk.db" and settings.slack_api_url == "https://slack.com/api/"
    assert settings.teams[0].command == "/ask-it" and settings.teams[0].name == "It"
    assert "xoxb" not in repr(settings)
    with pytest.raises(ConfigError, match="PORT"):
        load_settings({"ASKDESK_CONFIG": str(tmp_path / "askdesk.toml"), "PORT": "http"}, dotenv_path=None)
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        load_settings({"ASKDESK_CONFIG": str(tmp_path / "askdesk.toml")}, dotenv_path=None,
                      require_signing_secret=True)


def test_example_config_is_valid_and_matches_the_schema() -> None:
    example = ROOT / "bot" / "templates" / "askdesk.example.toml"
    settings = load_settings({"ASKDESK_CONFIG": str(example)}, dotenv_path=None)
    assert [t.slug for t in settings.teams] == ["finance", "it"]
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    document = tomllib.loads(example.read_text())
    jsonschema.validate(document, schema)
    jsonschema.validate(TEST_CONFIG, schema)
    # what the models refuse, the schema refuses too (editors flag it before askdesk starts)
    for bad in (config_with(workspace__timezon="UTC"), config_with(surveys={"dealy": "1h"}),
                config_with(scheduler={"workers": 0}), config_with(digest={"weekday": "monday"}),
                config_with(teams__0__channel="#finance"), config_with(teams__0__categories=["x"] * 101),
                config_with(teams__0__first_response_sla="30 minutes"), {"workspace": {}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(ConfigError):
            parse_config("x.toml", bad)
    team = schema["$defs"]["Team"]
    assert team["properties"]["first_response_sla"]["default"] == "4h" and team["required"] == ["slug", "channel"]


def test_config_schema_command_init_help_and_version(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    schema = subprocess.run([sys.executable, "-m", "bot", "config", "schema"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert schema.returncode == 0 and json.loads(schema.stdout) == config_schema()
    assert list(tmp_path.iterdir()) == []
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-mine\n")
    script = (
        "from bot.cli.main import main\n"
        "for argv in (['init'], [], ['--version']):\n"
        "    try:\n"
        "        print('rc', main(argv))\n"
        "    except SystemExit as exit:\n"
        "        print('exit', exit.code)\n")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "wrote askdesk.toml" in out.stdout and "skipped .env: it already exists" in out.stdout
    assert (tmp_path / ".env").read_text() == "SLACK_BOT_TOKEN=xoxb-mine\n"
    assert (tmp_path / "askdesk.toml").read_text() == (ROOT / "bot/templates/askdesk.example.toml").read_text()
    assert "usage: askdesk" in out.stdout and "init" in out.stdout and "rc 0" in out.stdout  # no command: help
    assert "askdesk " in out.stdout and "exit 0" in out.stdout  # --version
    (tmp_path / "askdesk.toml").write_text("# mine\n")
    (tmp_path / ".env").unlink()
    again = subprocess.run([sys.executable, "-m", "bot", "init"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    assert again.returncode == 0 and "skipped askdesk.toml" in again.stdout and "wrote .env" in again.stdout
    assert (tmp_path / "askdesk.toml").read_text() == "# mine\n"
    assert (tmp_path / ".env").read_text() == (ROOT / "bot/templates/env.example").read_text()


def test_manifest_is_valid_against_slacks_schema(sim: SlackSimulator, db_url: str) -> None:
    settings = make_settings(sim, db_url)
    schema = json.loads((FIXTURES / "manifest.schema.1.0.0.json").read_text())
    for kwargs in ({"request_url": "https://desk.example.com/slack/events"}, {"socket": True}):
        manifest = build_manifest(settings, **kwargs)
        jsonschema.validate(manifest, schema)
        commands = [c["command"] for c in manifest["features"]["slash_commands"]]
        assert commands == ["/ask-finance", "/ask-it", "/ask-people", "/askdesk"]
        assert manifest["features"]["shortcuts"][0]["type"] == "message"
        assert len(manifest["features"]["shortcuts"][0]["name"]) <= 24
        assert manifest["settings"]["socket_mode_enabled"] is bool(kwargs.get("socket"))
        urls = json.dumps(manifest).count("desk.example.com")
        assert urls == (0 if kwargs.get("socket") else 6)
        assert {"reaction_added", "app_home_opened", "message.channels"} <= set(
            manifest["settings"]["event_subscriptions"]["bot_events"])


def _env(sim: SlackSimulator, db_url: str, config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ASKDESK_", "DATABASE_"))}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=sim.base_url,
               DATABASE_URL=db_url, ASKDESK_CONFIG=str(config), LOG_LEVEL="INFO", PYTHONPATH=str(ROOT), **extra)
    return env


def _write_config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "askdesk.toml", {
        "workspace": {"timezone": "Europe/Berlin", "department_profile_field": "Department"},
        "teams": TEST_CONFIG["teams"]})


def test_manifest_command_prints_yaml(sim: SlackSimulator, db_url: str, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bot", "manifest", "--request-url", "https://x.example/slack/events"],
                         env=_env(sim, db_url, _write_config(tmp_path)), capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["features"]["slash_commands"][0]["command"] == "/ask-finance"


def test_bad_config_fails_at_start_with_clear_message(sim: SlackSimulator, db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "askdesk.toml"
    config.write_text('[[teams]]\nslug = "it"\nchannel = "C0IT"\nresolution_sla = "tomorrow"\n')
    out = subprocess.run([sys.executable, "-m", "bot", "run", "--http"], env=_env(sim, db_url, config),
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2
    assert "askdesk.toml: key 'teams[0].resolution_sla'" in out.stderr and "Traceback" not in out.stderr


def test_run_serves_http_health_and_a_real_request(sim: SlackSimulator, db_url: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--http", "--host", "127.0.0.1",
                             "--port", str(port)], env=_env(sim, db_url, _write_config(tmp_path)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        sim.wait_for(lambda: _healthy(base), timeout=30)
        driver = SlackDriver(base + "/slack/events", SIGNING_SECRET, sim)
        resp = driver.slash("/ask-finance", "Is the subprocess alive?", user_id=DAVE)
        assert resp.status == 200 and "#1" in resp.body
        posted = sim.wait_for(lambda: [m for m in sim.messages(FINANCE_CH)], timeout=10)
        assert "Is the subprocess alive?" in json.dumps(posted[0]["blocks"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read() if proc.stdout else ""
    assert "Traceback" not in output and SIGNING_SECRET not in output and BOT_TOKEN not in output


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_db_upgrade_command(sim: SlackSimulator, db_url: str, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], env=_env(sim, db_url, _write_config(tmp_path)),
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "is at revision" in out.stdout and "password" not in out.stdout


def test_upgrade_from_first_revision_keeps_data(tmp_path: Path, pg_database: str | None) -> None:
    """A database created at the first revision, holding data, upgrades to the latest losslessly."""
    url = _fresh_database(tmp_path, pg_database)
    upgrade(url, "0001")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO requests (team, origin_team, requester_id, department, summary, text, urgency, status,"
            " post_state, created_at, updated_at, resolution_count, reopen_count, transfer_count) VALUES"
            " ('finance', 'finance', 'U1', 'Sales', 'old', 'old request', 'normal', 'resolved', 'posted',"
            " '2026-01-05 10:00:00', '2026-01-05 11:00:00', 1, 0, 0)"))
        conn.execute(text("INSERT INTO request_events (request_id, kind, team, at) VALUES"
                          " (1, 'created', 'finance', '2026-01-05 10:00:00')"))
    upgrade(url, "head")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT text, department, status FROM requests WHERE id = 1")).one()
        assert tuple(row) == ("old request", "Sales", "resolved")
        assert conn.execute(text("SELECT count(*) FROM request_events")).scalar() == 1
    head = current_revision(engine)
    engine.dispose()
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    assert head == ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def _fresh_database(tmp_path: Path, pg_database: str | None) -> str:
    if not pg_database:
        return f"sqlite:///{tmp_path / 'migrate.db'}"
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(pg_database)
    name = f"{url.database}_mig"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)

"""`askdesk init` (an example config and .env in the current folder) and `askdesk config schema|check`."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import Any

from bot.config import config_schema, load_settings

# (file written, template shipped in bot/templates)
INIT_FILES = (("askdesk.toml", "askdesk.example.toml"), (".env", "env.example"))


def template_text(name: str) -> str:
    return resources.files("bot").joinpath("templates", name).read_text(encoding="utf-8")


def cmd_init(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    for target, template in INIT_FILES:
        path = folder / target
        try:
            with path.open("x", encoding="utf-8") as out:  # "x": never overwrite, even in a race
                out.write(template_text(template))
        except FileExistsError:
            print(f"skipped {path}: it already exists (left unchanged)")
            continue
        print(f"wrote {path}")
    print("next: describe your teams in askdesk.toml and put your Slack credentials in .env "
          "(`askdesk config check` validates both)")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(f"{settings.config_path}: valid ({len(settings.teams)} teams: "
          f"{', '.join(t.slug for t in settings.teams)})")
    return 0


def add_parsers(sub: Any) -> None:
    init = sub.add_parser("init", help="write an example askdesk.toml and .env here (never overwrites)")
    init.add_argument("--dir", default=".", help="folder to write them to (default: the current folder)")
    init.set_defaults(func=cmd_init)
    config = sub.add_parser("config", help="the configuration file: its JSON Schema, or a check")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("schema", help="print the config file's JSON Schema (for editors)").set_defaults(
        func=cmd_config_schema)
    config_sub.add_parser("check", help="validate the environment and config file, then exit").set_defaults(
        func=cmd_config_check)

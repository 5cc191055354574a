"""`python -m bot.i18n extract|update|compile|check` (see bot/i18n/catalogs.py)."""

from __future__ import annotations

import argparse
import sys

from bot.i18n import catalogs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.i18n", description=catalogs.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("extract", "update", "compile", "check"))
    args = parser.parse_args(argv)
    if args.command == "extract":
        catalogs.write(catalogs.extract(), catalogs.POT)
    elif args.command == "update":
        catalogs.update()
    elif args.command == "compile":
        catalogs.compile_all()
    else:
        found = catalogs.check()
        for problem in found:
            print(problem, file=sys.stderr)
        print(f"{len(found)} problem(s)" if found else "catalogs complete")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m worker.devtools.simulator [flags]`: serve the Cal.com API simulator (prints its URL once bound)."""

from __future__ import annotations

import argparse

from worker.devtools.simulator.config import add_arguments, config_from_args
from worker.devtools.simulator.server import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.devtools.simulator", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    run(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

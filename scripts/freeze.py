"""Refresh the frozen copies in a revision's SQL file from sql/, before the revision lands.

A block of ``migrations/versions/<rev>.sql`` that starts with ``-- from: sql/<file>`` lines is rebuilt
from those files; other blocks are left alone. Once a revision has landed it is frozen: never run this on
it again (a changed definition then needs a new revision). Without --force this refuses files that are
committed in git already.

The ``-- from:`` lines name the files as they were when the revision was written. Landed revisions keep them
(0001-0018 name files that were later split so that each definition lives in the file named after it, issue 9):
they are history, not read again. A ``-- from:`` file that does not exist stops the rebuild with its name.
List a block's ``-- from:`` files in the order they must run: a SQL function's body is checked when it is
created, so the views and functions it reads come first.

    python scripts/freeze.py migrations/versions/0010_add_host_busy_time.sql [--force]
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^-- name: ", re.MULTILINE)


def rebuild(text: str) -> str:
    head, *blocks = NAME.split(text)
    out = [head]
    for block in blocks:
        lines = block.splitlines()
        sources = [ln.removeprefix("-- from: ").strip() for ln in lines[1:] if ln.startswith("-- from: ")]
        if missing := [s for s in sources if not (ROOT / s).is_file()]:
            raise SystemExit(f"-- name: {lines[0]}: no such file {', '.join(missing)} (a landed revision is frozen)")
        if sources:
            body = [lines[0], *(f"-- from: {s}" for s in sources)]
            body += [(ROOT / s).read_text().rstrip() + "\n" for s in sources]
            block = "\n".join(body) + "\n"
        out.append(block)
    return "-- name: ".join(out)


def main() -> None:
    path = Path(sys.argv[1])
    committed = (
        subprocess.run(
            ["git", "ls-files", "--error-unmatch", str(path)], cwd=ROOT, capture_output=True, check=False
        ).returncode
        == 0
    )
    if committed and "--force" not in sys.argv:
        raise SystemExit(f"{path} is committed: if it has landed it is frozen (use --force only if it has not)")
    path.write_text(rebuild(path.read_text()))


if __name__ == "__main__":
    main()

"""Record benchmark results as markdown tables in docs/benchmarks.md, one section per benchmark."""

from __future__ import annotations

import platform
import re
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\nEach section is written by a script in `bench/` (`make bench` runs them all) and compares "
    "against a reference measured in the same run, so ratios matter more than seconds. Machine: 2 cores, 24 GiB, "
    "shared and noisy. Every figure is the latest measured one; how it got there is in git.\n"
)


def record(section: str, columns: list[str], row: list, key: str) -> None:
    """Insert or replace the row whose first cell is ``key`` in section ``section``."""
    text = DOC.read_text() if DOC.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    line = "| " + " | ".join(str(c) for c in [*row, stamp]) + " |"
    head = "| " + " | ".join([*columns, "measured"]) + " |\n|" + " --- |" * (len(columns) + 1)
    pattern = re.compile(rf"(## {re.escape(section)}\n)(.*?)(?=\n## |\Z)", re.S)
    match = pattern.search(text)
    if not match:
        text = text.rstrip("\n") + f"\n\n## {section}\n\n_Python {platform.python_version()}_\n\n{head}\n{line}\n"
    else:
        body = match.group(2)
        table_lines = [r for r in body.splitlines() if r.startswith("|")]
        rows = [r for r in table_lines[2:] if not r.startswith(f"| {key} |")]
        lines = body.splitlines()
        first = next((i for i, r in enumerate(lines) if r.startswith("|")), len(lines))
        # the notes above the table kept as written (blank lines separate their paragraphs and lists); a stray line
        # below it is moved up
        notes = "\n".join([*lines[:first], *(r for r in lines[first:] if r and not r.startswith("|"))]).strip("\n")
        table = [*head.splitlines(), *rows, line]
        body = "\n" + notes + "\n\n" + "\n".join(table) + "\n"
        text = text[: match.start(2)] + body + text[match.end(2) :]
    DOC.write_text(text)

"""Long commands say what they are doing: every Makefile recipe that installs packages, starts PostgreSQL or
runs pytest/the bench announces itself first (quiet pip stays quiet, but no step is a minute of silence)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SLOW = re.compile(r"pip install|ensure-postgres|-m pytest|-m tests\.bench")


def recipes(text: str) -> dict[str, list[str]]:
    """Target -> its recipe lines (tab-indented lines after `target: prerequisites`)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("\t") and current:
            found[current].append(line.strip())
        elif re.match(r"^[^\s#=][^=]*:(?!=)", line):
            current = line.split(":", 1)[0].strip()
            found[current] = []
        elif not line.strip().startswith("#"):
            current = None
    return found


def test_every_slow_step_of_the_makefile_is_announced_before_it_runs():
    slow = {target: lines for target, lines in recipes((ROOT / "Makefile").read_text()).items()
            if any(SLOW.search(line) for line in lines)}
    assert {"$(VENV)/.installed", "postgres", "test", "unit"} <= set(slow)
    for target, lines in slow.items():
        first_slow = next(i for i, line in enumerate(lines) if SLOW.search(line))
        assert any(line.startswith("@echo \"==>") for line in lines[:first_slow]), \
            f"make {target}: announce the step (@echo \"==> ...\") before {lines[first_slow]!r}"


def test_the_bench_announces_each_phase():
    source = (ROOT / "tests" / "bench.py").read_text()
    main = source.split("def main()", 1)[1].split("\ndef ", 1)[0]
    assert main.count("announce(") >= 4

"""The documented teardown (docs/operations.md): its config switches, applied to a stack under mocks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from preview.harness import ROOT, Capture, load_stack_file, run_program

OPERATIONS_DOC = ROOT / "docs" / "operations.md"
TEARDOWN_HEADING = "## Tearing down a dev stack on purpose"
_CONFIG_SET = re.compile(r"^pulumi config set (?P<key>[\w:.-]+) (?P<value>\S+)\s*$")


def documented_switches(doc: Path = OPERATIONS_DOC) -> dict[str, str]:
    """The `pulumi config set KEY VALUE` lines of the teardown section, in order."""
    text = doc.read_text()
    if TEARDOWN_HEADING not in text:
        raise ValueError(f"{doc.name} has no section {TEARDOWN_HEADING!r}")
    section = text.split(TEARDOWN_HEADING, 1)[1].split("\n## ", 1)[0]
    switches = {}
    for line in section.splitlines():
        found = _CONFIG_SET.match(line.strip())
        if found:
            switches[found["key"]] = found["value"]
    if not switches:
        raise ValueError(f"{doc.name}: no `pulumi config set` line under {TEARDOWN_HEADING!r}")
    return switches


def run_teardown_config(stack: str, switches: Optional[dict[str, str]] = None) -> Capture:
    """Run the program under mocks as it is after the teardown's `pulumi up` (raises ConfigError if refused)."""
    config, _ = load_stack_file(stack)
    config.update(documented_switches() if switches is None else switches)
    return run_program(stack, config)

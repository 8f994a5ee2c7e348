"""The rendered manifests equal the committed golden files (tests/golden/, `make golden` rewrites them).

A refactoring of the builders must leave every byte of every object as it was; a deliberate change of
the manifests regenerates the golden files in the same commit, so the diff shows what changed."""

from __future__ import annotations

import difflib

import pytest

from tests.golden_manifests import GOLDEN_DIR, MATRIX, render


def first_difference(case: str, rendered: dict[str, str]) -> str:
    golden_dir = GOLDEN_DIR / case
    golden = {p.name: p.read_text() for p in sorted(golden_dir.glob("*.yaml"))}
    if set(golden) != set(rendered):
        return (f"{case}: objects differ from the golden files; only rendered: {sorted(set(rendered) - set(golden))}, "
                f"only golden: {sorted(set(golden) - set(rendered))}")
    for name in sorted(rendered):
        if rendered[name] != golden[name]:
            diff = difflib.unified_diff(golden[name].splitlines(keepends=True),
                                        rendered[name].splitlines(keepends=True),
                                        f"tests/golden/{case}/{name}", f"rendered/{case}/{name}")
            return "".join(diff)
    return ""


def test_every_case_has_golden_files():
    assert sorted(p.name for p in GOLDEN_DIR.iterdir() if p.is_dir()) == sorted(MATRIX), "run `make golden`"


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_render_matches_golden(case):
    difference = first_difference(case, render(case))
    if difference:
        pytest.fail(f"rendered manifests differ from tests/golden (`make golden` if intended):\n{difference}",
                    pytrace=False)


def test_a_changed_byte_is_reported_with_its_diff():
    rendered = render("dev")
    name = next(n for n in rendered if n.startswith("deployment-"))
    rendered[name] = rendered[name].replace("GITSYNC_DEPTH", "GITSYNC_DEPTH_X", 1)
    difference = first_difference("dev", rendered)
    assert f"--- tests/golden/dev/{name}" in difference
    assert "\n-        - name: GITSYNC_DEPTH\n" in difference and "\n+        - name: GITSYNC_DEPTH_X\n" in difference

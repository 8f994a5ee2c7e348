"""README.md is a front page: short, with the picture, the two commands and working links; the long text lives in
docs/ by task, and nothing the README used to say was dropped on the way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_LINES = 200

# Every heading of the long README this front page replaced, and the page that now holds it.
MOVED = {
    "Try it (no cloud account needed)": "README.md",
    "Deploy for real": "README.md",
    "Prerequisites": "docs/deploy.md",
    "Steps": "docs/deploy.md",
    "Reaching the UI (`uiHost`)": "docs/deploy.md",
    "Control-plane access": "docs/deploy.md",
    "What the first `pulumi up` waits for": "docs/deploy.md",
    "Deploy rehearsal (`make rehearse`)": "docs/rehearsal.md",
    "Before a risky change": "docs/rehearsal.md",
    "CI/CD on your own repository": "docs/ci.md",
    "What gets built": "docs/architecture.md",
    "The Airflow pod": "docs/architecture.md",
    "DAG source: git-sync or git-bundle": "docs/dags.md",
    "Another image or size for one task": "docs/dags.md",
    "How a task gets a Google role": "docs/dags.md",
    "Your own image": "docs/images.md",
    "What it costs (idle)": "docs/cost.md",
    "Configuration reference": "docs/configuration.md",
    "The main settings": "docs/deploy.md",
    "Operations: data safety, backups, restores, upgrades, rotation": "docs/operations.md",
}
# Words about how the project is made, not how it is used.
# (A "git helper" or a "CLI session" is fine.)
INTERNAL = re.compile(r"\bissue #?\d+|\bthis session\b|\bsession \d|\b(other|another|a) helpers? (added|landed)|"
                      r"\bthe lead\b", re.I)


def headings(path: Path) -> set[str]:
    found, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^#+ (.*)$", line)):
            found.add(match.group(1).strip())
    return found


def test_front_page_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines; keep it a front page (≤ {MAX_LINES}), " \
                                    "move detail to a page in docs/ and link it"


def test_front_page_shows_the_picture_and_the_two_commands():
    text = README.read_text()
    assert "](docs/architecture.svg)" in text
    try_it = text.split("## Try it", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", try_it, re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make preview", "make test"]


def test_ci_runs_the_readmes_test_command():
    assert (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1] == "make test"
    assert "make test" in README.read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    text = page.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_every_docs_page_is_linked_from_the_front_page():
    text = README.read_text()
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in text, f"README.md does not link docs/{page.name}"


@pytest.mark.parametrize("heading, page", sorted(MOVED.items()))
def test_old_readme_sections_have_a_home(heading, page):
    assert heading in headings(ROOT / page), f"'{heading}' is no longer a heading of {page}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_docs_do_not_mention_internal_work_items(page):
    found = [line for line in page.read_text().splitlines() if INTERNAL.search(line)]
    assert not found, f"{page.relative_to(ROOT)} refers to how the project is made: {found[:3]}"

"""Emulate git-sync v4 on a local repository, driven by the rendered git-sync container's env.

Layout as git-sync v4 makes it under GITSYNC_ROOT: a worktree per commit at
`.worktrees/<commit hash>`, and the GITSYNC_LINK symlink (`repo`) pointing at the current one,
swapped atomically (new link created aside, then renamed over the old one) before the previous
worktree is removed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", text)
    if not text or not match:
        raise ValueError(f"not a Go duration: {text!r}")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


class DagRepo:
    """The DAG git repository users push to."""

    def __init__(self, path: Path, branch: str) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", branch)

    def commit(self, files: dict[str, str], message: str) -> str:
        for relative, text in files.items():
            target = self.path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")


class GitSyncEmulator:
    """Syncs `repo` into `root` like git-sync v4 with the given env (GITSYNC_*)."""

    def __init__(self, repo: DagRepo, root: Path, env: dict[str, str]) -> None:
        self.repo = repo
        self.root = root
        self.link = env["GITSYNC_LINK"]
        self.ref = env["GITSYNC_REF"]
        self.period = parse_duration(env["GITSYNC_PERIOD"])
        self.depth = int(env.get("GITSYNC_DEPTH", "1"))
        self.synced: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def current(self) -> Optional[str]:
        link = self.root / self.link
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def sync_once(self) -> Optional[str]:
        commit = git(self.repo.path, "rev-parse", self.ref)
        previous = self.current()
        if commit == previous:
            return None
        worktree = self.root / ".worktrees" / commit
        if not worktree.exists():
            worktree.parent.mkdir(parents=True, exist_ok=True)
            clone_args = ["clone", "-q", "--no-hardlinks", "--branch", self.ref]
            if self.depth > 0:
                clone_args += ["--depth", str(self.depth)]
            subprocess.run(["git", *clone_args, f"file://{self.repo.path}", str(worktree)], check=True,
                           capture_output=True, env={**os.environ, **GIT_ENV})
            shutil.rmtree(worktree / ".git")
        temporary = self.root / f".{self.link}.tmp"
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(Path(".worktrees") / commit)
        os.replace(temporary, self.root / self.link)  # atomic swap
        if previous:
            shutil.rmtree(self.root / ".worktrees" / previous, ignore_errors=True)
        self.synced.append((time.monotonic(), commit))
        return commit

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.period):
                self.sync_once()

        self._thread = threading.Thread(target=loop, name="git-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

"""Entry point of a task pod in git-bundle mode (shipped in the airflow-config ConfigMap).

The KubernetesExecutor starts the pod with args `python -m airflow.sdk.execution_time.execute_workload
--json-string <workload>`; the pod template makes this script the container's command, so those args
arrive here. The workload names the DAG bundle and the commit its DAG run was parsed at. Left alone,
GitDagBundle would make a full bare clone of the repository (every branch, all history) in each task
pod before checking that commit out. Instead this fetches only that commit, `--depth 1`, into the
folder GitDagBundle serves a version from (`<storage>/<bundle>/versions/<commit>`, without `.git`),
so the bundle finds it there and clones nothing. Credentials come from the bundle's own GitHook (the
same token helper / GIT_SSH_COMMAND the dag-processor uses). Then the task command is exec'd.

If the fetch fails (e.g. a server that refuses to serve a commit by id), GitDagBundle clones the commit
as it always does, here, while the credentials are still in the environment: the task still runs the
right commit, only the shortcut is lost, and it says so. On every path the git connection (the token) is
removed from the environment before the task's code runs; if even the clone failed, the task then fails
to load its DAG without it, as it would have anyway.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path


def bundle_version(args: list[str]) -> tuple[str, str] | None:
    """(bundle name, commit) of an execute_workload command line, or None when it pins none."""
    if "--json-string" not in args:
        return None
    try:
        payload = json.loads(args[args.index("--json-string") + 1])
    except (IndexError, ValueError):
        return None
    info = payload.get("bundle_info") or {}
    if not info.get("name") or not info.get("version"):
        return None
    return info["name"], info["version"]


def git(*args: str, cwd: Path, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def fetch_commit(name: str, commit: str) -> tuple[int | None, str | None]:
    """Lay out `commit` of bundle `name` where GitDagBundle looks for a pruned version; return the bytes of
    git objects fetched (None if the version was there already) and the bundle's git connection id."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    bundle = DagBundlesManager().get_bundle(name=name, version=commit)
    target = Path(bundle.repo_path)
    if not getattr(bundle, "supports_versioning", False):
        raise RuntimeError(f"bundle {name} is not versioned")
    conn_id = getattr(bundle, "git_conn_id", None)
    if target.exists():
        return None, conn_id
    target.parent.mkdir(parents=True, exist_ok=True)
    with bundle.lock():
        if target.exists():
            return None, conn_id
        hook = getattr(bundle, "hook", None)
        with hook.configure_hook_env() if hook else nullcontext():
            env = {**os.environ, **(hook.env if hook else {}), "GIT_TERMINAL_PROMPT": "0"}
            work = Path(tempfile.mkdtemp(prefix=f".{commit[:12]}-", dir=target.parent))
            try:
                git("init", "-q", cwd=work, env=env)
                git("fetch", "-q", "--depth", "1", "--no-tags", str(bundle.repo_url), commit, cwd=work, env=env)
                git("checkout", "-q", "FETCH_HEAD", cwd=work, env=env)
                head = git("rev-parse", "HEAD", cwd=work, env=env)
                if head != commit:  # a branch or tag name as version: GitDagBundle resolves those itself
                    raise RuntimeError(f"fetched {head}, not {commit}")
                fetched = sum(f.stat().st_size for f in (work / ".git" / "objects").rglob("*") if f.is_file())
                shutil.rmtree(work / ".git")
                os.rename(work, target)  # atomic: GitDagBundle never sees a half-written version
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return fetched, conn_id


def git_conn_envs() -> list[str]:
    """AIRFLOW_CONN_* variables of every bundle's git connection, from the bundle config list."""
    try:
        bundles = json.loads(os.environ.get("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST") or "[]")
    except ValueError:
        return []
    ids = {(b.get("kwargs") or {}).get("git_conn_id") for b in bundles if isinstance(b, dict)}
    return sorted(f"AIRFLOW_CONN_{i.upper()}" for i in ids if i)


def without_credentials(connection: str) -> str:
    """The git connection reduced to what names the repository (type and host). The task's own GitDagBundle
    still builds its hook from it (a missing connection makes it log a "conn_id isn't defined" traceback in
    every task, git provider 1.0.1 hooks/git.py), while the token, key file and host-key settings are gone."""
    try:
        value = json.loads(connection)
    except ValueError:  # the URI form, which the program does not render: keep nothing of it
        value = {}
    kept = {key: value[key] for key in ("conn_type", "host") if isinstance(value, dict) and key in value}
    return json.dumps({"conn_type": "git", **kept}, sort_keys=True)


def clone_with_bundle(name: str, commit: str) -> None:
    """GitDagBundle's own (full) clone of `commit`, run while the credentials are present."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().get_bundle(name=name, version=commit).initialize()


def main(argv: list[str]) -> None:
    command = argv[1:]
    if not command:
        sys.exit("usage: fetch_dag_version.py <task command ...>")
    pinned = bundle_version(command)
    if pinned:
        started = time.monotonic()
        try:
            fetched, _ = fetch_commit(*pinned)
            event = "DAG bundle version present" if fetched is None else "DAG bundle version fetched"
            print(json.dumps({"event": event,
                              "bundle": pinned[0], "version": pinned[1], "fetched_bytes": fetched,
                              "seconds": round(time.monotonic() - started, 3)}), flush=True)
        except Exception as error:  # the bundle's own clone still gets the right commit, only slower
            print(json.dumps({"event": "shallow fetch failed; GitDagBundle clones", "bundle": pinned[0],
                              "version": pinned[1], "error": str(error)[-500:]}), flush=True)
            try:
                clone_with_bundle(*pinned)
            except Exception as clone_error:
                print(json.dumps({"event": "GitDagBundle clone failed", "bundle": pinned[0], "version": pinned[1],
                                  "error": str(clone_error)[-500:]}), flush=True)
    # The commit is on disk (or cannot be had): the task's code gets no git credentials, on every path.
    for name in git_conn_envs():
        if name in os.environ:
            os.environ[name] = without_credentials(os.environ[name])
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv)

"""The git side of git-bundle mode on the real GitDagBundle / GitHook of the pinned provider, without a
scheduler or database (no lock needed):

- a task pod fetches its pinned commit shallow instead of cloning a repository with history, and a public
  repository once per task (no clone after the fetch);
- private repositories: the rendered connection (token from the git Secret; SSH key and known_hosts as
  mounted files) lets the dag-processor track the repository and a task pod fetch its pinned commit,
  and a wrong credential or an unknown host key is refused;
- a server that will not serve a commit by id costs the shortcut, not the pinning;
- the KubernetesExecutor's pod generator keeps the template's entry point and appends the task command;
- every AIRFLOW__ variable git-bundle mode renders is a real option of the pinned Airflow.

What is real and what stands in: git, the provider and the fetch script are real. The token test talks to
a real git smart-HTTP server (`git http-backend`) that demands Basic auth; the only deviation is the
connection's URL scheme (http: no TLS here). The SSH test runs git's real ssh transport with an `ssh`
stand-in on PATH (git_servers.py) that checks the identity file and host key the way `ssh -o
StrictHostKeyChecking=yes -o UserKnownHostsFile=…` does, then runs git-upload-pack locally — no sshd.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from .bundle import (BUNDLE_SUBPATH, TRACK, bundle_storage, git_redirect, history_repo, pinned_dag,
                     render_bundle_stack, rendered_pod_template, run_python, start_task, task_pod,
                     task_start_cost)
from .git_servers import BasicAuthGitServer, install_fake_ssh
from .gitsync import GIT_ENV, DagRepo
from .harness import WORK, make_pod
from .pod import AIRFLOW_VENV, LocalPod, reset_dir

# A task pod must not clone a repository with history: the shallow fetch gets at most this share of the git
# objects GitDagBundle alone clones. docs/benchmarks.md has the figures of a bigger repository.
SHALLOW_SHARE_MAX = 0.2

TOKEN = "ghp_airflowGkeTestToken0123456789abcdef"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nYWlyZmxvdy1na2UtdGVzdC1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
OTHER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDifferentHostKeyOfAnImpostorServer0000000"
SSH_HOST = "git.example.test"

@pytest.fixture(scope="module")
def served() -> tuple:
    """A repository with two commits, served bare from WORK/private-git/dags.git; yields (root, commits)."""
    work = reset_dir(WORK / "private-git")
    repo = DagRepo(work / "source", "main")
    first = repo.commit({f"{BUNDLE_SUBPATH}/pinned.py": pinned_dag("pinned", "one")}, "one")
    second = repo.commit({f"{BUNDLE_SUBPATH}/pinned.py": pinned_dag("pinned", "two")}, "two")
    root = work / "served"
    root.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(root / "dags.git")], check=True,
                   env={**GIT_ENV, "PATH": "/usr/bin:/bin"})
    return root, first, second


def files_containing(folder, text: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def over_plain_http(rendered_env: dict, url: str) -> dict:
    """The one deviation, in the connection and the bundle's repo_url alike: http, as there is no TLS here."""
    http_url = url.replace("https:", "http:")
    return {name: rendered_env[name].replace(url, http_url)
            for name in ("AIRFLOW_CONN_DAGS_GIT", "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST")}


def git_sessions(server: BasicAuthGitServer) -> int:
    """Fetches and clones the server saw: each starts with one GET of info/refs (smart HTTP, v0 and v2)."""
    return sum(method == "GET" and "/info/refs" in path for method, path, _ in server.requests)


def test_token_over_https_in_git_bundle_mode(served):
    root, first, second = served
    with BasicAuthGitServer(root, "git", TOKEN) as server:
        url = f"https://127.0.0.1:{server.port}/dags.git"
        objects = render_bundle_stack("dev-bundle-token", dagsRepo=url, dagsGitToken=TOKEN)
        pod = make_pod(objects, "Deployment", "airflow-dag-processor", "bundle-token-pod")
        rendered = json.loads(pod.rendered_env(pod.container("dag-processor"))["AIRFLOW_CONN_DAGS_GIT"])
        assert rendered == {"conn_type": "git", "host": url, "login": "git", "password": TOKEN}
        plain_http = over_plain_http(pod.rendered_env(pod.container("dag-processor")), url)

        tracked = run_python(pod, "dag-processor", TRACK, plain_http)
        assert tracked.returncode == 0, tracked.stderr[-3000:]
        assert f"TRACKING {second}" in tracked.stdout
        assert any(authorized for _, _, authorized in server.requests)
        assert not files_containing(bundle_storage(pod, "dag-processor"), TOKEN), "token written into bundle storage"

        task = task_pod(objects, "bundle-token-task")
        ran = start_task(task, first, plain_http)
        assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
        assert '"DAG bundle version fetched"' in ran.stdout and "TASK \"one\"" in ran.stdout
        assert not (bundle_storage(task, "base") / "dags" / "bare").exists()  # the shallow fetch, not a clone

        server.requests.clear()
        wrong_token = {**json.loads(plain_http["AIRFLOW_CONN_DAGS_GIT"]), "password": "wrong-token"}
        wrong = {**plain_http, "AIRFLOW_CONN_DAGS_GIT": json.dumps(wrong_token)}
        refused = run_python(make_pod(objects, "Deployment", "airflow-dag-processor", "bundle-token-refused"),
                             "dag-processor", TRACK, wrong)
        assert refused.returncode != 0 and "TRACKING" not in refused.stdout
        assert server.requests and not any(authorized for _, _, authorized in server.requests)


def test_a_public_repository_is_fetched_once_per_task(served):
    """No token, no key: the rendered connection names only the repository. The task pod's entry point
    fetches the pinned (older) commit and GitDagBundle, finding it laid out, fetches nothing more: one git
    session per task start, not a shallow fetch followed by a clone."""
    root, first, _ = served
    with BasicAuthGitServer(root, None) as server:
        url = f"https://127.0.0.1:{server.port}/dags.git"
        task = task_pod(render_bundle_stack("dev-bundle-public", dagsRepo=url), "bundle-public-task")
        rendered = task.rendered_env(task.container("base"))
        assert json.loads(rendered["AIRFLOW_CONN_DAGS_GIT"]) == {"conn_type": "git", "host": url}
        ran = start_task(task, first, over_plain_http(rendered, url))
        assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
        assert git_sessions(server) == 1, server.requests
        assert '"DAG bundle version fetched"' in ran.stdout and 'TASK "one"' in ran.stdout
        assert not (bundle_storage(task, "base") / "dags" / "bare").exists()


@pytest.fixture(scope="module")
def ssh_rendered(served) -> list[dict]:
    return render_bundle_stack("dev-bundle-ssh", dagsRepo=f"git@{SSH_HOST}:acme/dags.git", dagsSshKey=SSH_KEY,
                               dagsSshKnownHosts=f"{SSH_HOST} {HOST_KEY}")


def fake_ssh_env(pod: LocalPod, container: str, served_root, host_key: str = HOST_KEY) -> dict:
    bin_dir = WORK / "fake-ssh-bin"
    install_fake_ssh(bin_dir)
    expected_key = WORK / "fake-ssh-expected-key"
    expected_key.write_text(SSH_KEY)
    log = WORK / f"fake-ssh-{pod.root.parent.name}-{container}.log"
    log.unlink(missing_ok=True)
    return {"PATH": f"{bin_dir}:{AIRFLOW_VENV / 'bin'}:/usr/bin:/bin",
            "FAKE_SSH_CONTAINER_ROOT": str(pod.container_root(pod.container(container))),
            "FAKE_SSH_LOG": str(log), "FAKE_SSH_EXPECTED_KEY": str(expected_key),
            "FAKE_SSH_HOST_KEY": host_key, "FAKE_SSH_REPOS": str(served_root)}


def ssh_calls(env: dict) -> list[dict]:
    with open(env["FAKE_SSH_LOG"]) as log:
        return [json.loads(line) for line in log]


def test_ssh_key_with_known_hosts_in_git_bundle_mode(served, ssh_rendered):
    root, first, second = served
    pod = make_pod(ssh_rendered, "Deployment", "airflow-dag-processor", "bundle-ssh-pod")
    env = fake_ssh_env(pod, "dag-processor", root)
    tracked = run_python(pod, "dag-processor", TRACK, env)
    assert tracked.returncode == 0, tracked.stderr[-3000:]
    assert f"TRACKING {second}" in tracked.stdout
    calls = ssh_calls(env)
    assert calls and all(c["host"] == f"git@{SSH_HOST}" and c["command"].startswith("git-upload-pack") for c in calls)
    for call in calls:  # the mounted key, the mounted known_hosts, and the host key must match it
        assert call["identity"] == "/etc/git-secret/ssh"
        assert call["options"]["StrictHostKeyChecking"] == "yes"
        assert call["options"]["UserKnownHostsFile"] == "/etc/git-secret/known_hosts"

    task = task_pod(ssh_rendered, "bundle-ssh-task")
    task_env = fake_ssh_env(task, "base", root)
    ran = start_task(task, first, task_env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    assert '"DAG bundle version fetched"' in ran.stdout and "TASK \"one\"" in ran.stdout
    assert [c["identity"] for c in ssh_calls(task_env)] == ["/etc/git-secret/ssh"]  # one fetch, no clone


def test_ssh_refuses_a_host_whose_key_is_not_the_known_one(served, ssh_rendered):
    root, _, _ = served
    pod = make_pod(ssh_rendered, "Deployment", "airflow-dag-processor", "bundle-ssh-impostor")
    env = fake_ssh_env(pod, "dag-processor", root, host_key=OTHER_HOST_KEY)
    refused = run_python(pod, "dag-processor", TRACK, env)
    assert refused.returncode != 0 and "TRACKING" not in refused.stdout
    assert "Host key verification failed" in refused.stdout + refused.stderr


@pytest.fixture(scope="module")
def plain_rendered() -> list[dict]:
    return render_bundle_stack("dev-bundle-plain")


def test_task_start_fetches_one_commit_not_the_history(plain_rendered):
    repo, head = history_repo(WORK / "history-repo", commits=40, blob_bytes=64 * 1024)
    shallow = task_start_cost(plain_rendered, repo, head, "history-task-shallow", entry_point=True)
    clone = task_start_cost(plain_rendered, repo, head, "history-task-clone", entry_point=False)
    print(f"task start on 40 commits x 64 KiB: entry point {shallow.git_bytes / 1e6:.2f} MB in "
          f"{shallow.seconds:.1f}s; GitDagBundle alone {clone.git_bytes / 1e6:.2f} MB in {clone.seconds:.1f}s")
    assert clone.cloned and not shallow.cloned
    assert shallow.git_bytes <= SHALLOW_SHARE_MAX * clone.git_bytes, (shallow, clone)


def test_every_bundle_variable_is_a_real_option(plain_rendered):
    from .test_real_airflow import known_options

    options = known_options()
    pods = [o["spec"]["template"]["spec"] for o in plain_rendered if o["kind"] == "Deployment"]
    pods.append(rendered_pod_template(plain_rendered)["spec"])
    names = {v["name"] for pod in pods for c in pod["containers"] for v in c.get("env", [])}
    bundle = {n for n in names if "BUNDLE" in n}
    assert bundle == {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
                      "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"}
    unknown = sorted(n for n in names if n.startswith("AIRFLOW__")
                     and tuple(p.lower() for p in n[len("AIRFLOW__"):].split("__", 1)) not in options)
    assert not unknown, f"not options of the pinned Airflow (silently ignored): {unknown}"


def test_a_server_refusing_a_commit_by_id_still_runs_that_commit(plain_rendered):
    """Git servers speaking protocol v0 serve only branch and tag tips unless configured otherwise: the
    shallow fetch of an older commit fails, the entry point says so, and GitDagBundle's own clone still
    checks out the pinned commit."""
    repo, _ = history_repo(WORK / "fallback-repo", commits=3, blob_bytes=1024)
    older = subprocess.run(["git", "-C", str(repo.path), "rev-parse", "HEAD~1"], capture_output=True, text=True,
                           check=True).stdout.strip()
    redirect = git_redirect(repo.path)
    protocol_v0 = {**redirect, "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_1": "protocol.version",
                   "GIT_CONFIG_VALUE_1": "0"}
    pod = task_pod(plain_rendered, "fallback-task")
    ran = start_task(pod, older, protocol_v0)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    assert "shallow fetch failed; GitDagBundle clones" in ran.stdout
    assert 'TASK "c1"' in ran.stdout
    assert (bundle_storage(pod, "base") / "dags" / "bare").exists()


EXECUTOR_POD = """
import json, sys
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

template = PodGenerator.deserialize_model_file(sys.argv[1])
pod = PodGenerator.construct_pod(
    dag_id="pinned", task_id="first", pod_id="pinned-first", try_number=1, kube_image=None, date=None,
    args=json.loads(sys.argv[2]), pod_override_object=None, base_worker_pod=template, namespace="airflow",
    scheduler_job_id="1", run_id="manual__1")
print(json.dumps(PodGenerator.serialize_pod(pod)))
"""


def test_the_executor_keeps_the_entry_point_and_appends_its_command(plain_rendered, tmp_path):
    """The pod the KubernetesExecutor builds from the rendered template (the provider's own generator)
    runs the template's command with the task's command as its args: the chain the task-pod tests run."""
    template_file = tmp_path / "pod_template_file.yaml"
    template_file.write_text(yaml.safe_dump(rendered_pod_template(plain_rendered)))
    args = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "{}"]
    result = subprocess.run([str(AIRFLOW_VENV / "bin" / "python"), "-c", EXECUTOR_POD, str(template_file),
                             json.dumps(args)], capture_output=True, text=True, timeout=120,
                            env={"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    pod = json.loads(result.stdout.strip().splitlines()[-1])
    [base] = [c for c in pod["spec"]["containers"] if c["name"] == "base"]
    assert base["command"] == ["python", "/opt/airflow/fetch_dag_version.py"]
    assert base["args"] == args
    assert "initContainers" not in pod["spec"] or not pod["spec"]["initContainers"]

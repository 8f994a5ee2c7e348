"""Run the containers we render, as rendered, on this machine.

Reads the manifests `make preview` writes, resolves every env var (value, secretKeyRef,
configMapKeyRef, envFrom) and mounted ConfigMap file from the rendered objects, and maps
container paths onto a per-pod folder: container path P becomes <pod root>/P, with each volume
mount a symlink to that volume's folder (subPath mounts link to one file). Nothing here re-types a
command or a variable: commands, args, env and probes all come from the manifests.

Deviations from the cluster, each explicit in `LocalPod.env(..., overrides)` calls of the tests:
the scheduler's KubernetesExecutor reaches the Kubernetes API emulator of tests/integration/kube/
through a kubeconfig file (`[kubernetes_executor] in_cluster = False`, `config_file`) instead of
in-cluster config, remote logging goes to the local logs folder (the Google provider's GCS
client libraries are not installed), and host/port of the execution API URL point at the local api-server. Task pods are
run by the local kubelet of tests/integration/kube/kubelet.py, with the same two env deviations.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_VENV = ROOT / ".venv-airflow"
# The official image sets AIRFLOW_HOME=/opt/airflow and HOME=/home/airflow, and puts `airflow` on PATH.
IMAGE_ENV = {"AIRFLOW_HOME": "/opt/airflow", "HOME": "/home/airflow"}
# Folders of the image itself, created in each container's root (read-only in the cluster).
IMAGE_DIRS = ("opt/airflow", "home/airflow", "tmp")


def load_manifests(directory: Path) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))]


def find(objects: Iterable[dict], kind: str, name: Optional[str] = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(found) != 1:
        raise LookupError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def secret_data(secret: dict) -> dict[str, str]:
    data = dict(secret.get("stringData") or {})
    for key, value in (secret.get("data") or {}).items():
        data[key] = base64.b64decode(value).decode()
    return data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def expand_kubelet_vars(argument: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of command/args: $(VAR) from the container's env (left as is when VAR is
    not defined), and $$ reduced to $ (so $$(...) reaches the shell as $(...))."""
    out, i = [], 0
    while i < len(argument):
        if argument[i] == "$" and i + 1 < len(argument):
            following = argument[i + 1]
            if following == "$":
                out.append("$")
                i += 2
                continue
            end = argument.find(")", i + 2) if following == "(" else -1
            if end != -1:
                name = argument[i + 2:end]
                out.append(env.get(name, argument[i:end + 1]))
                i = end + 1
                continue
            out.append(argument[i:i + 2])
            i += 2
            continue
        out.append(argument[i])
        i += 1
    return "".join(out)


@dataclass
class LocalPod:
    """One rendered pod spec laid out under `root` on this machine."""

    objects: list[dict]
    pod_spec: dict
    root: Path
    volumes_dir: Path
    namespace: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def create(cls, objects: list[dict], pod_spec: dict, root: Path, volumes_dir: Path, namespace: str) -> "LocalPod":
        pod = cls(objects, pod_spec, root, volumes_dir, namespace)
        pod._lay_out_volumes()
        return pod

    # --- volumes --------------------------------------------------------------------------
    def volume_path(self, name: str) -> Path:
        return self.volumes_dir / name

    def _lay_out_volumes(self) -> None:
        for volume in self.pod_spec.get("volumes", []):
            path = self.volume_path(volume["name"])
            path.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                config_map = find(self.objects, "ConfigMap", volume["configMap"]["name"])
                for key, text in (config_map.get("data") or {}).items():
                    (path / key).write_text(text)
            elif "secret" in volume:
                secret = find(self.objects, "Secret", volume["secret"]["secretName"])
                for item in volume["secret"].get("items") or [{"key": k, "path": k} for k in secret_data(secret)]:
                    (path / item["path"]).write_text(secret_data(secret)[item["key"]])

    def containers(self) -> list[dict]:
        return [*self.pod_spec.get("initContainers", []), *self.pod_spec["containers"]]

    def container(self, name: str) -> dict:
        return next(c for c in self.containers() if c["name"] == name)

    def container_root(self, container: dict) -> Path:
        """A folder standing for the container's filesystem, with its mounts linked in."""
        base = self.root / container["name"]
        if base.exists():
            return base
        for mount in container.get("volumeMounts", []):
            target = self.volume_path(mount["name"])
            if mount.get("subPath"):
                target = target / mount["subPath"]
            link = base / mount["mountPath"].lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)
        for directory in IMAGE_DIRS:
            (base / directory).mkdir(parents=True, exist_ok=True)
        return base

    def written_outside_mounts(self, name: str) -> list[str]:
        """Files a container created outside its volume mounts: each would fail with the rendered
        readOnlyRootFilesystem. (Mounts are symlinks here, so walking without following them skips them.)"""
        base = self.container_root(self.container(name))
        return sorted(str(Path(folder, f).relative_to(base)) for folder, _, files in os.walk(base)
                      for f in files if not Path(folder, f).is_symlink())

    def host_path(self, container: dict, path: str) -> str:
        return str(self.container_root(container) / path.lstrip("/"))

    # --- environment ----------------------------------------------------------------------
    def _resolve(self, source: dict) -> str:
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            return secret_data(find(self.objects, "Secret", ref["name"]))[ref["key"]]
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            return find(self.objects, "ConfigMap", ref["name"])["data"][ref["key"]]
        raise ValueError(f"unsupported valueFrom {source}")

    def rendered_env(self, container: dict) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "secretRef" in source:
                env.update({prefix + k: v for k, v in
                            secret_data(find(self.objects, "Secret", source["secretRef"]["name"])).items()})
            if "configMapRef" in source:
                env.update({prefix + k: v for k, v in
                            find(self.objects, "ConfigMap", source["configMapRef"]["name"])["data"].items()})
        for var in container.get("env", []):
            env[var["name"]] = var["value"] if "value" in var else self._resolve(var["valueFrom"])
        return env

    def env(self, container: dict, overrides: Optional[dict[str, str]] = None) -> dict[str, str]:
        """Process env: image defaults + rendered env, container paths mapped to host paths; `overrides`
        are host-side values (e.g. the kubeconfig file) and are not mapped, wherever the checkout lives."""
        rendered = {**IMAGE_ENV, **self.rendered_env(container)}
        mapped = {k: self.host_path(container, v) if v.startswith(("/opt/", "/git", "/home/", "/tmp")) else v
                  for k, v in rendered.items()}
        return {
            "PATH": f"{AIRFLOW_VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "TMPDIR": self.host_path(container, "/tmp"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            **mapped,
            **(overrides or {}),
        }

    def argv(self, container: dict, env: dict[str, str], extra_args: Optional[list[str]] = None) -> list[str]:
        argv = [*(container.get("command") or []), *(container.get("args") or []), *(extra_args or [])]
        return [expand_kubelet_vars(a, env) for a in argv]

    # --- running --------------------------------------------------------------------------
    def run(self, name: str, overrides: Optional[dict[str, str]] = None, argv: Optional[list[str]] = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        container = self.container(name)
        env = self.env(container, overrides)
        command = argv if argv is not None else self.argv(container, env)
        return subprocess.run(command, env=env, cwd=self.host_path(container, "/opt/airflow"), capture_output=True,
                              text=True, timeout=timeout)

    def start(self, name: str, overrides: Optional[dict[str, str]] = None,
              replace_args: Optional[dict[str, str]] = None) -> subprocess.Popen:
        container = self.container(name)
        env = self.env(container, overrides)
        command = [(replace_args or {}).get(a, a) for a in self.argv(container, env)]
        log = open(self.root / f"{name}.log", "w")
        process = subprocess.Popen(command, env=env, cwd=self.host_path(container, "/opt/airflow"), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.root / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_tree(process)

    # --- probes ---------------------------------------------------------------------------
    def probe(self, name: str, kind: str, overrides: Optional[dict[str, str]] = None,
              port_map: Optional[dict] = None) -> tuple[bool, str]:
        """Run a rendered probe once, as the kubelet would: HTTP GET on the pod IP, or exec in the container."""
        container = self.container(name)
        probe = container[kind]
        if "httpGet" in probe:
            port = probe["httpGet"]["port"]
            if isinstance(port, str):
                port = next(p["containerPort"] for p in container["ports"] if p["name"] == port)
            port = (port_map or {}).get(port, port)
            url = f"http://127.0.0.1:{port}{probe['httpGet'].get('path', '/')}"
            try:
                with urllib.request.urlopen(url, timeout=probe.get("timeoutSeconds", 1)) as response:
                    return 200 <= response.status < 400, f"{response.status} {response.read(500)!r}"
            except (urllib.error.URLError, OSError) as error:
                return False, f"{url}: {error}"
        if "exec" in probe:
            result = self.run(name, overrides, argv=probe["exec"]["command"], timeout=probe.get("timeoutSeconds", 1) + 60)
            return result.returncode == 0, (result.stdout + result.stderr)[-2000:]
        raise ValueError(f"unsupported probe {probe}")


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL a started container's processes, as the end of its PID namespace does: its process group
    and every descendant (the SIGTERM relay runs Airflow in a process group of its own)."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    process.wait()


def wait_until(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f}s (last: {last!r})")


def reset_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path

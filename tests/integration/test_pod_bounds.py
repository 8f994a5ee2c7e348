"""Issue 16 on real Airflow 3.3.2: the api-server's rendered liveness stays up while its database hangs
(readiness does not), and the triggerer's log server answers a trigger-log fetch addressed the way the
rendered settings make the api-server address it (the triggerer's hostname = its IP)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import pytest

from .bundle import migrate, own_database
from .harness import API_CONTAINER_PORT, make_pod
from .pod import AIRFLOW_VENV, free_port, wait_until

OFF = {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"}


@pytest.fixture(scope="module")
def database(rendered) -> dict[str, str]:
    """A migrated database of this module's own (the shared one is dropped by other sessions' fixtures)."""
    database = own_database(rendered, "airflow_bounds")
    migrate(rendered, database, "bounds-job")
    return database


class DatabaseLink:
    """A TCP relay standing in for the Cloud SQL Auth Proxy: `hang()` keeps every connection open and
    answers nothing, as a database that has stopped responding does."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.hung = target, threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def hang(self) -> None:
        self.hung.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if self.hung.is_set():
                    continue  # swallowed: the peer waits for an answer that never comes
                sink.sendall(data)

    def close(self) -> None:
        self.listener.close()


def http_status(url: str, timeout: float) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, OSError) as error:  # a timeout is what the kubelet counts as a failure
        return None, repr(error)


def test_liveness_answers_while_the_database_hangs_and_readiness_does_not(rendered, database):
    pod = make_pod(rendered, "Deployment", "airflow", "bounds-api")
    api = pod.container("api-server")
    url = urlsplit(database["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    link = DatabaseLink((url.hostname, url.port))
    port = free_port()
    conn = urlunsplit(url._replace(netloc=url.netloc.replace(f":{url.port}", f":{link.port}")))
    try:
        pod.start("api-server", {**OFF, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn},
                  replace_args={str(API_CONTAINER_PORT): str(port)})
        ports = {API_CONTAINER_PORT: port}
        # As the kubelet: liveness and readiness only once the startup probe (the same DB-free path) has passed.
        wait_until(lambda: pod.probe("api-server", "startupProbe", port_map=ports)[0], 120, what="api-server started")
        wait_until(lambda: pod.probe("api-server", "readinessProbe", port_map=ports)[0], 60, what="api-server ready")
        link.hang()
        timeout = api["readinessProbe"]["timeoutSeconds"]
        status, body = http_status(f"http://127.0.0.1:{port}{api['readinessProbe']['httpGet']['path']}", timeout)
        assert status != 200 or '"unhealthy"' in body, f"health ignores a hung database: {status} {body}"
        for _ in range(api["livenessProbe"]["failureThreshold"]):  # as many as would restart the container
            alive, detail = pod.probe("api-server", "livenessProbe", port_map=ports)
            assert alive, f"liveness fails with the database hung: {detail}"
    finally:
        pod.stop_all()
        link.close()


FETCH = """
import sys
from airflow.utils.log.file_task_handler import _fetch_logs_from_service
from airflow.utils.net import get_hostname
host, port, path = get_hostname(), sys.argv[1], sys.argv[2]
response = _fetch_logs_from_service(f"http://{host}:{port}/log/{path}", path)
print(host)
print(response.status_code)
print(response.text)
"""


def test_trigger_log_server_answers_by_ip(rendered, database):
    pod = make_pod(rendered, "Deployment", "airflow", "bounds-triggerer")
    port = free_port()  # deviation: not 8794, which another run on this machine may hold
    relative = "dag_id=d/run_id=r/task_id=t/attempt=1.log.trigger.1.log"
    log = pod.volume_path("logs") / relative
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("deferred: waiting for the partner's file\n")
    overrides = {**OFF, **database, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port)}
    try:
        pod.start("triggerer", overrides)
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 60, what="trigger log server")
        api = pod.container("api-server")
        env = pod.env(api, overrides)
        result = subprocess.run([str(AIRFLOW_VENV / "bin" / "python"), "-c", FETCH, str(port), relative], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr[-2000:]
        host, status, *text = result.stdout.splitlines()
        ipaddress.ip_address(host)  # the rendered hostname_callable: an address, not a pod name
        assert status == "200" and "waiting for the partner's file" in "\n".join(text), result.stdout
    finally:
        pod.stop_all()

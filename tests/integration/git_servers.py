"""Git servers on loopback for the credential tests (and a public one): git's smart HTTP protocol behind Basic auth
(`git http-backend` as CGI), and an `ssh` stand-in that checks the identity file and the known_hosts
file it is given, then runs `git-upload-pack` on a local repository (what sshd would run remotely).
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class BasicAuthGitServer:
    """Serves the repositories under `root` over http://127.0.0.1:<port>/<name>; every request must carry
    `user:token` as Basic auth, or none with `user` None (a public repository). `requests` records (method,
    path, authorized)."""

    def __init__(self, root: Path, user: str | None, token: str | None = None) -> None:
        self.root = root
        self.expected = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode() if user else None
        self.requests: list[tuple[str, str, bool]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._serve()

            def do_POST(self):
                self._serve()

            def _serve(self):
                authorized = server.expected is None or self.headers.get("Authorization") == server.expected
                server.requests.append((self.command, self.path, authorized))
                if not authorized:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="dags"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(server.root),
                       "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
                       "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": "git", "REMOTE_ADDR": "127.0.0.1",
                       "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
                if self.headers.get("Git-Protocol"):
                    env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
                output = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
                head, _, payload = output.partition(b"\r\n\r\n")
                headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
                status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() != "status":
                        self.send_header(key, value.strip())
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "BasicAuthGitServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


FAKE_SSH = r'''#!{python}
"""ssh stand-in: git runs `$GIT_SSH_COMMAND <host> git-upload-pack '<path>'`. Paths the command names
are read inside the container's file system (FAKE_SSH_CONTAINER_ROOT), as ssh in the pod would."""
import json, os, sys

args = sys.argv[1:]
options, identity, rest = {{}}, None, []
i = 0
while i < len(args):
    if args[i] == "-o":
        key, _, value = args[i + 1].partition("=")
        options[key] = value
        i += 2
    elif args[i] == "-i":
        identity = args[i + 1]
        i += 2
    elif args[i] in ("-p", "-F"):
        i += 2
    else:
        rest.append(args[i])
        i += 1
host, command = rest[0], " ".join(rest[1:])
root = os.environ["FAKE_SSH_CONTAINER_ROOT"]
inside = lambda path: os.path.join(root, path.lstrip("/"))
record = {{"host": host, "command": command, "identity": identity, "options": options}}
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps(record) + "\n")
if identity is None or open(inside(identity)).read() != open(os.environ["FAKE_SSH_EXPECTED_KEY"]).read():
    sys.exit("Permission denied (publickey).")
hostname = host.split("@")[-1]
checking = options.get("StrictHostKeyChecking", "ask")
known = options.get("UserKnownHostsFile")
known_lines = open(inside(known)).read().split("\n") if known and known != "/dev/null" else []
trusted = any(line.split()[:1] == [hostname] and line.split()[1:3] == os.environ["FAKE_SSH_HOST_KEY"].split()
              for line in known_lines if line.strip())
listed = any(line.split()[:1] == [hostname] for line in known_lines)
if not trusted and (checking == "yes" or (listed and checking not in ("no", "off"))):
    sys.exit("Host key verification failed.")  # unknown host under "yes", or a changed key (any checking mode)
verb, _, path = command.partition(" ")
repo = os.path.join(os.environ["FAKE_SSH_REPOS"], path.strip("'").split("/")[-1])
os.execvp(verb, [verb, repo])
'''


def install_fake_ssh(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "ssh"
    path.write_text(FAKE_SSH.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path

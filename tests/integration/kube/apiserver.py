"""A Kubernetes API emulator on loopback: the slice of the core/v1 Pod API the KubernetesExecutor uses.

Served on 127.0.0.1 over plain HTTP, reached through a kubeconfig file (`write_kubeconfig`), so the
scheduler's own client (`kubernetes` 36, `[kubernetes_executor] in_cluster = False`, `config_file`)
talks to it unchanged. Semantics follow the API reference
(https://kubernetes.io/docs/reference/using-api/api-concepts/):
- every write bumps one global `resourceVersion`; objects get `uid`, `creationTimestamp`,
  `status.phase: Pending` on create;
- list honours `labelSelector` (=, ==, !=, in, notin, exists, !exists) and `fieldSelector`
  (metadata.name, metadata.namespace, status.phase with = / !=); lists carry `kind` and
  `metadata.resourceVersion`;
- watch (`?watch=true`) replays events after `resourceVersion` (or synthetic ADDED for the current
  objects when it is unset or "0"), then streams new ones until `timeoutSeconds`; an object leaving
  the selector is sent as DELETED, one entering it as ADDED ("Watch" in the page above);
- DELETE sets `metadata.deletionTimestamp` and the DELETED event carries it (the executor tells a
  deletion from an adoption by that field, kubernetes_executor_utils.process_status);
- PATCH: a JSON list is a JSON patch (RFC 6902: add/replace/remove), an object a merge patch
  (RFC 7386) whatever the Content-Type, because the Python client sends dict bodies as
  `application/json-patch+json` (kubernetes-client/python#1758) and the real server treats them as a
  strategic merge, which equals a merge patch for the metadata maps the executor patches;
- `/status` takes PUT and PATCH (the kubelet's path); the main resource ignores status changes;
- discovery (`/version`, `/api`, `/api/v1`, `/apis`) for the dynamic client the executor lists
  pods with during adoption.
Every POSTed pod body is kept as sent (`posted`) so tests can compare it with the pod template.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit

import yaml

POD_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods(?:/(?P<name>[^/]+)(?:/(?P<sub>status|log))?)?$")
ALL_PODS = "/api/v1/pods"
EVENTS_PATH = re.compile(r"^/api/v1/(?:namespaces/[^/]+/)?events$")
WATCH_CAP_SECONDS = 600.0


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- selectors ------------------------------------------------------------------------------

def _requirement(text: str) -> Callable[[dict], bool]:
    text = text.strip()
    if match := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", text):
        key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
        return (lambda m: m.get(key) in values) if op == "in" else (lambda m: m.get(key) not in values)
    if match := re.fullmatch(r"([\w./-]+)\s*(!=|==|=)\s*([\w./-]*)", text):
        key, op, value = match.groups()
        return (lambda m: m.get(key) != value) if op == "!=" else (lambda m: m.get(key) == value)
    if match := re.fullmatch(r"!([\w./-]+)", text):
        return lambda m: match.group(1) not in m
    if re.fullmatch(r"[\w./-]+", text):
        return lambda m: text in m
    raise ValueError(f"unsupported selector requirement {text!r}")


def _split_selector(selector: str) -> list[str]:
    """Split on the commas that are not inside an `in (...)` value set."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in [*parts, current] if p.strip()]


def label_matcher(selector: Optional[str]) -> Callable[[dict], bool]:
    requirements = [_requirement(p) for p in _split_selector(selector or "")]
    return lambda obj: all(r(obj["metadata"].get("labels") or {}) for r in requirements)


FIELDS = {"metadata.name": lambda o: o["metadata"]["name"],
          "metadata.namespace": lambda o: o["metadata"]["namespace"],
          "status.phase": lambda o: (o.get("status") or {}).get("phase", "")}


def field_matcher(selector: Optional[str]) -> Callable[[dict], bool]:
    checks = []
    for part in _split_selector(selector or ""):
        match = re.fullmatch(r"([\w.]+)\s*(!=|==|=)\s*(.*)", part.strip())
        if not match or match.group(1) not in FIELDS:
            raise ValueError(f"unsupported field selector {part!r}")
        field, op, value = match.groups()
        checks.append((FIELDS[field], op == "!=", value))
    return lambda obj: all((get(obj) != value) if negate else (get(obj) == value) for get, negate, value in checks)


# --- patches --------------------------------------------------------------------------------

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict, operations: list[dict]) -> dict:
    result = copy.deepcopy(target)
    for op in operations:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        node = result
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if op["op"] in ("add", "replace"):
            if isinstance(node, list):
                node.insert(len(node) if last == "-" else int(last), op["value"])
            else:
                node[last] = op["value"]
        elif op["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            raise ValueError(f"unsupported JSON patch op {op['op']!r}")
    return result


# --- the store ------------------------------------------------------------------------------

class PodStore:
    """Pods by (namespace, name), one resourceVersion counter, and the full event history."""

    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], dict] = {}
        self.posted: list[dict] = []
        self.events: list[tuple[int, str, Optional[dict], Optional[dict]]] = []  # rv, type, old, new
        self.version = 0
        self.changed = threading.Condition()

    def _record(self, kind: str, old: Optional[dict], new: Optional[dict]) -> None:
        self.events.append((self.version, kind, copy.deepcopy(old), copy.deepcopy(new)))
        self.changed.notify_all()

    def _bump(self, obj: dict) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def create(self, namespace: str, body: dict) -> tuple[int, dict]:
        with self.changed:
            self.posted.append(copy.deepcopy(body))
            pod = copy.deepcopy(body)
            meta = pod.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            meta["namespace"] = namespace
            if (namespace, meta.get("name")) in self.pods:
                return 409, status_body(409, "AlreadyExists", f'pods "{meta["name"]}" already exists')
            pod.setdefault("apiVersion", "v1")
            pod.setdefault("kind", "Pod")
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
            pod["status"] = {"phase": "Pending", "qosClass": "Burstable"}
            self._bump(pod)
            self.pods[(namespace, meta["name"])] = pod
            self._record("ADDED", None, pod)
            return 201, copy.deepcopy(pod)

    def get(self, namespace: str, name: str) -> Optional[dict]:
        with self.changed:
            pod = self.pods.get((namespace, name))
            return copy.deepcopy(pod) if pod else None

    def update(self, namespace: str, name: str, change: Callable[[dict], dict], status_only: bool) -> tuple[int, dict]:
        with self.changed:
            old = self.pods.get((namespace, name))
            if old is None:
                return 404, status_body(404, "NotFound", f'pods "{name}" not found')
            new = change(copy.deepcopy(old))
            if status_only:
                new = {**copy.deepcopy(old), "status": new.get("status", {})}
            else:
                new["status"] = copy.deepcopy(old.get("status", {}))
            for key in ("uid", "creationTimestamp", "namespace", "name"):
                new["metadata"][key] = old["metadata"][key]
            self._bump(new)
            self.pods[(namespace, name)] = new
            self._record("MODIFIED", old, new)
            return 200, copy.deepcopy(new)

    def delete(self, namespace: str, name: str) -> tuple[int, dict]:
        with self.changed:
            old = self.pods.pop((namespace, name), None)
            if old is None:
                return 404, status_body(404, "NotFound", f'pods "{name}" not found')
            gone = copy.deepcopy(old)
            gone["metadata"]["deletionTimestamp"] = now_rfc3339()
            gone["metadata"]["deletionGracePeriodSeconds"] = 0
            self._bump(gone)
            self._record("DELETED", old, gone)
            return 200, copy.deepcopy(gone)

    def list(self, namespace: Optional[str], labels, fields) -> dict:
        with self.changed:
            items = [copy.deepcopy(p) for (ns, _), p in sorted(self.pods.items())
                     if (namespace is None or ns == namespace) and labels(p) and fields(p)]
            return {"kind": "PodList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self.version)}, "items": items}

    def watch(self, namespace: Optional[str], labels, fields, since: Optional[str], timeout: float, write) -> None:
        """Send watch events to `write` until `timeout` or until writing fails (client gone)."""
        def matches(obj):
            return obj is not None and (namespace is None or obj["metadata"]["namespace"] == namespace) \
                and labels(obj) and fields(obj)

        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            with self.changed:
                if since in (None, "", "0"):
                    backlog = [("ADDED", p) for _, p in sorted(self.pods.items()) if matches(p)]
                    cursor = self.version
                else:
                    backlog, cursor = [], int(since)
            for kind, obj in backlog:
                write(kind, obj)
            while not deadline.is_set():
                with self.changed:
                    fresh = [e for e in self.events if e[0] > cursor]
                    if not fresh:
                        self.changed.wait(0.5)
                        continue
                    cursor = fresh[-1][0]
                for _, kind, old, new in fresh:
                    was, now = matches(old), matches(new)
                    if kind == "DELETED" and was:
                        write("DELETED", new)
                    elif kind in ("ADDED", "MODIFIED") and now:
                        write("ADDED" if not was else "MODIFIED", new)
                    elif kind == "MODIFIED" and was and not now:
                        write("DELETED", new)  # left the selector
        finally:
            timer.cancel()


def status_body(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


DISCOVERY = {
    "/version": {"major": "1", "minor": "33", "gitVersion": "v1.33.0-airflow-gke-emulator", "platform": "linux/amd64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["po"]},
        {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod",
         "verbs": ["get", "patch", "update"]},
        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
        {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event", "verbs": ["list", "watch"]},
    ]},
}


class KubeApiEmulator:
    """The HTTP server around a PodStore. `log_reader(namespace, name, container)` serves pods/log."""

    def __init__(self, log_reader: Optional[Callable[[str, str, Optional[str]], tuple[int, str]]] = None) -> None:
        self.store = PodStore()
        self.log_reader = log_reader
        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "KubeApiEmulator":
        self._thread = threading.Thread(target=self.server.serve_forever, name="kube-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def write_kubeconfig(self, path: Path, namespace: str) -> Path:
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "emulator",
                  "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                  "users": [{"name": "scheduler", "user": {"token": "emulator-does-not-check-tokens"}}],
                  "contexts": [{"name": "emulator",
                                "context": {"cluster": "emulator", "user": "scheduler", "namespace": namespace}}]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        return path

    def _handler(self):
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1: a watch is a chunked response, one chunk per event (the client reads chunk by
            # chunk; an HTTP/1.0 body would sit in its read buffer), closed when the watch ends.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, code: int, body, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                return json.loads(self.raw_body or b"null")

            def _route(self, method: str) -> None:
                # Read every body (DELETE carries DeleteOptions) so a kept-alive connection stays in step.
                self.raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                emulator.requests.append((method, url.path))
                try:
                    self._dispatch(method, url.path, query)
                except (ValueError, KeyError, IndexError, TypeError) as error:
                    self._send(400, status_body(400, "BadRequest", str(error)))

            def _dispatch(self, method: str, path: str, query: dict) -> None:
                store = emulator.store
                if method == "GET" and path in DISCOVERY:
                    return self._send(200, DISCOVERY[path])
                if EVENTS_PATH.match(path):
                    return self._send(200, {"kind": "EventList", "apiVersion": "v1",
                                            "metadata": {"resourceVersion": str(store.version)}, "items": []})
                match = POD_PATH.match(path)
                if path == ALL_PODS:
                    namespace, name, sub = None, None, None
                elif match:
                    namespace, name, sub = match.group("ns"), match.group("name"), match.group("sub")
                else:
                    return self._send(404, status_body(404, "NotFound", f"the emulator does not serve {path}"))
                if name is None and method == "GET":
                    labels = label_matcher(query.get("labelSelector"))
                    fields = field_matcher(query.get("fieldSelector"))
                    if query.get("watch", "").lower() in ("true", "1"):
                        return self._watch(namespace, labels, fields, query)
                    return self._send(200, store.list(namespace, labels, fields))
                if name is None and method == "POST":
                    return self._send(*store.create(namespace, self._body()))
                if sub == "log" and method == "GET":
                    code, text = emulator.log_reader(namespace, name, query.get("container")) \
                        if emulator.log_reader else (404, "no logs")
                    if code != 200:
                        return self._send(code, status_body(code, "BadRequest", text))
                    return self._send(200, text, "text/plain")
                if method == "GET":
                    pod = store.get(namespace, name)
                    return self._send(200, pod) if pod else \
                        self._send(404, status_body(404, "NotFound", f'pods "{name}" not found'))
                if method == "DELETE":
                    return self._send(*store.delete(namespace, name))
                if method in ("PATCH", "PUT"):
                    body = self._body()
                    if method == "PUT":
                        change = lambda _old: body  # noqa: E731
                    elif isinstance(body, list):
                        change = lambda old: json_patch(old, body)  # noqa: E731
                    else:
                        change = lambda old: merge_patch(old, body)  # noqa: E731
                    return self._send(*store.update(namespace, name, change, status_only=sub == "status"))
                return self._send(405, status_body(405, "MethodNotAllowed", f"{method} {path}"))

            def _watch(self, namespace, labels, fields, query) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                timeout = min(float(query.get("timeoutSeconds") or WATCH_CAP_SECONDS), WATCH_CAP_SECONDS)

                def chunk(data: bytes) -> None:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                try:
                    emulator.store.watch(namespace, labels, fields, query.get("resourceVersion"), timeout,
                                         lambda kind, obj: chunk(json.dumps({"type": kind, "object": obj}).encode()
                                                                 + b"\n"))
                    chunk(b"")  # the last chunk: the watch ended (timeoutSeconds)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client closed the watch

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_PATCH(self):
                self._route("PATCH")

            def do_PUT(self):
                self._route("PUT")

            def do_DELETE(self):
                self._route("DELETE")

        return Handler

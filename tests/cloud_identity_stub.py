"""A loopback stand-in for the GKE metadata server's token endpoint and the three Cloud Identity Groups calls
auth/airflow_gke_groups.py makes, answering as Google documents them (groups.lookup,
groups.memberships.checkTransitiveMembership, groups.memberships.lookup under
https://cloud.google.com/identity/docs/reference/rest/v1/). Requests are recorded, faults can be injected."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

ACCESS_TOKEN = "ya29.stub-token"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
_QUERY = re.compile(r"member_key_id == '((?:[^'\\]|\\.)*)'")


@dataclass
class Group:
    id: str
    direct: set[str] = field(default_factory=set)
    nested: set[str] = field(default_factory=set)  # members only through a group inside this one


class CloudIdentityStub:
    def __init__(self, groups: dict[str, Group], premium: bool = True) -> None:
        self.groups, self.premium = groups, premium
        self.requests: list[dict] = []
        self.fail: dict[str, int] = {}  # call kind ("token", "lookup", "transitive", "membership") -> status
        self.delay: dict[str, float] = {}  # call kind -> seconds before answering
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.api_url = f"http://{self.host}/v1"

    def calls(self, kind: str) -> list[dict]:
        return [r for r in self.requests if r["kind"] == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, kind: str, path: str, query: dict, headers) -> tuple[int, dict]:
        if kind == "token":
            if headers.get("Metadata-Flavor") != "Google":
                return 403, {}
            return 200, {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
        if headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
        by_id = {g.id: g for g in self.groups.values()}
        if kind == "lookup":
            group = self.groups.get(query.get("groupKey.id", [""])[0])
            return (200, {"name": f"groups/{group.id}"}) if group else (404, {})
        group = by_id.get(path.split("/")[3])
        if group is None:
            return 404, {}
        if kind == "transitive":
            if not self.premium:
                return 403, {"error": {"code": 403, "status": "PERMISSION_DENIED"}}
            match = _QUERY.fullmatch(query.get("query", [""])[0])
            if not match:
                return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}
            email = re.sub(r"\\(.)", r"\1", match.group(1))
            return 200, {"hasMembership": email in group.direct | group.nested}
        email = query.get("memberKey.id", [""])[0]
        return (200, {"name": f"groups/{group.id}/memberships/m-{abs(hash(email))}"}) if email in group.direct \
            else (404, {"error": {"code": 404, "status": "NOT_FOUND"}})


def _kind(path: str) -> str:
    if path == TOKEN_PATH:
        return "token"
    if path == "/v1/groups:lookup":
        return "lookup"
    if re.fullmatch(r"/v1/groups/[^/]+/memberships:checkTransitiveMembership", path):
        return "transitive"
    if re.fullmatch(r"/v1/groups/[^/]+/memberships:lookup", path):
        return "membership"
    return "unknown"


def _handler(stub: CloudIdentityStub):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urllib.parse.urlsplit(self.path)
            kind, query = _kind(url.path), urllib.parse.parse_qs(url.query)
            stub.requests.append({"kind": kind, "path": url.path, "query": query, "raw_query": url.query,
                                  "authorization": self.headers.get("Authorization")})
            time.sleep(stub.delay.get(kind, 0))
            status, body = (stub.fail[kind], {}) if kind in stub.fail else \
                (404, {}) if kind == "unknown" else stub.answer(kind, url.path, query, self.headers)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args) -> None:
            pass

    return Handler

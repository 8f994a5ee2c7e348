"""A loopback stand-in of Google's side of the Secret Manager backend, run in .venv-airflow by
tests/integration/test_secret_manager_backend.py:

- GKE's metadata server, where a pod with Workload Identity gets its Google access token (google-auth
  finds it through GCE_METADATA_HOST / GCE_METADATA_IP, google/auth/environment_vars.py);
- an HTTP CONNECT proxy: gRPC core sends every channel through the proxy named by the `grpc_proxy`
  environment variable (https://github.com/grpc/grpc/blob/master/doc/core/default_http_proxy_proxy.md), so
  the client dials its real endpoint name and the proxy records it and tunnels to the server below,
  whatever the name: nothing leaves loopback;
- a gRPC server over TLS (a self-signed certificate for secretmanager.googleapis.com, which the client
  trusts through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH) implementing
  google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion with the client library's own
  message types: a stored secret's payload, NOT_FOUND otherwise.

Usage: python secret_manager_stand_in.py SECRETS_JSON RECORD_JSONL CERT_PEM PROJECT ACCOUNT_EMAIL.
SECRETS_JSON maps secret resource names (`projects/P/secrets/ID`) to payloads. One JSON line on stdout gives the ports; every metadata
request, CONNECT and RPC is appended to RECORD_JSONL; the stand-in stops when its stdin closes."""

from __future__ import annotations

import datetime
import json
import secrets
import socket
import socketserver
import sys
import threading
import urllib.parse
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.cloud.secretmanager_v1.types import AccessSecretVersionRequest, AccessSecretVersionResponse, SecretPayload

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
HOST = "secretmanager.googleapis.com"  # the name the certificate is for: the client's default endpoint
_lock = threading.Lock()


def record(path: str, event: dict) -> None:
    with _lock, open(path, "a") as out:
        out.write(json.dumps(event) + "\n")


def self_signed(cert_path: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    with open(cert_path, "wb") as out:
        out.write(pem)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()), pem


def metadata_server(record_path: str, project: str, email: str) -> ThreadingHTTPServer:
    """What google-auth asks GKE's metadata server (Workload Identity) for: the detection ping, the
    account's info, an access token, the project (google/auth/compute_engine/_metadata.py)."""
    class Metadata(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            path = urllib.parse.urlsplit(self.path).path
            flavor = self.headers.get("Metadata-Flavor")
            event = {"event": "metadata", "path": path, "flavor": flavor}
            account = "/computeMetadata/v1/instance/service-accounts/default/"
            if flavor != "Google":
                body, kind = None, None
            elif path == account + "token":
                event["access_token"] = "stand-in-" + secrets.token_hex(8)
                body, kind = {"access_token": event["access_token"], "expires_in": 3600, "token_type": "Bearer"}, "json"
            elif path == account:
                body, kind = {"email": email, "aliases": ["default"],
                              "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}, "json"
            elif path == "/computeMetadata/v1/project/project-id":
                body, kind = project, "text"
            elif path == "/computeMetadata/v1/universe/universe-domain":
                body, kind = "googleapis.com", "text"
            elif path in ("/", "/computeMetadata/v1/"):
                body, kind = "", "text"
            else:
                body, kind = None, None
            record(record_path, event)
            if body is None:
                self.send_response(404 if flavor == "Google" else 403)
                self.end_headers()
                return
            data = json.dumps(body).encode() if kind == "json" else body.encode()
            self.send_response(200)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Type", "application/json" if kind == "json" else "application/text")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Metadata)


def proxy_server(record_path: str, upstream_port: int) -> socketserver.ThreadingTCPServer:
    class Connect(socketserver.BaseRequestHandler):
        def handle(self):
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            record(record_path, {"event": "connect", "method": method, "target": target})
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            early = head.split(b"\r\n\r\n", 1)[1]
            if early:
                upstream.sendall(early)
            threading.Thread(target=pipe, args=(upstream, self.request), daemon=True).start()
            pipe(self.request, upstream)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Connect)
    server.daemon_threads = True
    return server


def pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def secret_manager(record_path: str, stored: dict[str, str], key: bytes, cert: bytes) -> tuple[grpc.Server, int]:
    def access(request: AccessSecretVersionRequest, context: grpc.ServicerContext) -> AccessSecretVersionResponse:
        metadata = dict(context.invocation_metadata())
        record(record_path, {"event": "access", "name": request.name, "authorization": metadata.get("authorization")})
        secret = request.name.rsplit("/versions/", 1)[0]
        if secret not in stored:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{secret}] not found or has no versions.")
        return AccessSecretVersionResponse(name=f"{secret}/versions/1",
                                           payload=SecretPayload(data=stored[secret].encode()))

    handler = grpc.method_handlers_generic_handler(SERVICE, {"AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
        access, request_deserializer=AccessSecretVersionRequest.deserialize,
        response_serializer=AccessSecretVersionResponse.serialize)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=(handler,))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    server.start()
    return server, port


def main(secrets_path: str, record_path: str, cert_path: str, project: str, email: str) -> None:
    with open(secrets_path) as source:
        stored = json.load(source)
    key, cert = self_signed(cert_path)
    grpc_server, grpc_port = secret_manager(record_path, stored, key, cert)
    servers = [metadata_server(record_path, project, email), proxy_server(record_path, grpc_port)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"metadata_port": servers[0].server_address[1], "proxy_port": servers[1].server_address[1]}),
          flush=True)
    sys.stdin.read()
    for server in servers:
        server.shutdown()
    grpc_server.stop(0)


if __name__ == "__main__":
    main(*sys.argv[1:6])

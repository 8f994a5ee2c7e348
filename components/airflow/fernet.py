"""The fernet key: which generated keys a stack holds, which Airflow reads, and which are protected.

Airflow encrypts every connection password/extra and every variable with `[core] fernet_key`; a comma
separated list is a MultiFernet: it encrypts with the first key and decrypts with any, and `airflow
rotate-fernet-key` re-encrypts everything with the first (Airflow docs, "Fernet", "Rotating encryption
keys": https://airflow.apache.org/docs/apache-airflow/3.3.2/security/secrets/fernet.html). So rotation is a
config change, airflow-gke:fernetKeyVersion N: the stack holds key N (new, first) and key N-1 (old, still
read), then after `airflow rotate-fernet-key` the next bump drops N-1. Each key is a random resource that
lives only in Pulumi state, so losing or replacing it makes the metadata unreadable: the keys Airflow
reads carry Pulumi `protect` whenever the database does (a protected resource cannot be deleted or
replaced: https://www.pulumi.com/docs/iac/concepts/options/protect/). A retired key (N-2) stays declared
one more version, unprotected, so that dropping it is an ordinary delete.
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_BYTES = 32  # Fernet keys are 32 url-safe base64-encoded bytes (cryptography.fernet.Fernet)


@dataclass(frozen=True)
class FernetKey:
    version: int
    resource_name: str
    read: bool  # in [core] fernet_key
    protect: bool


def resource_name(prefix: str, version: int) -> str:
    # Version 1 keeps the name stacks created before rotation have: no replacement on upgrade.
    return f"{prefix}-fernet-key" if version == 1 else f"{prefix}-fernet-key-v{version}"


def fernet_keys(prefix: str, version: int, protect: bool) -> list[FernetKey]:
    """Keys declared at `version`, newest first: current and previous (read), and the retired one."""
    keys = []
    for v, read in ((version, True), (version - 1, True), (version - 2, False)):
        if v >= 1:
            keys.append(FernetKey(v, resource_name(prefix, v), read, protect and read))
    return keys


def fernet_key_value(b64_url_keys: list[str]) -> str:
    """`[core] fernet_key` from the read keys' url-safe base64 (unpadded, as RandomId gives it), newest first."""
    return ",".join(key + "=" * (-len(key) % 4) for key in b64_url_keys)

"""Reading raw stack config: the `pulumi.Config` source, the `_Reader` that parses values and collects every
problem, the value parsers, and `ConfigError`, raised once with all problems before any resource is declared."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from typing import Any, Callable, Optional

import pulumi
import pulumi.runtime.config as runtime_config

from .declared import UNSET, unset_marker_keys

PROJECT = "airflow-gke"

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


UP_REFUSES = "; `pulumi up` will refuse it"  # said by the offline preview of a value a real deploy refuses


class ConfigError(pulumi.RunError):
    """Raised before any resource is declared when stack configuration is invalid."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        header = "Invalid stack configuration:" if len(problems) > 1 else "Invalid stack configuration."
        super().__init__("\n".join([header, *("  - " + p for p in problems)]))


# A source answers `get(namespace, key)` with the raw string value or None; secrets with `get_secret`.
class PulumiConfigSource:
    def __init__(self) -> None:
        self._configs = {ns: pulumi.Config(ns) for ns in (PROJECT, "gcp")}

    def get(self, namespace: str, key: str) -> Optional[str]:
        return self._configs[namespace].get(key)

    def get_secret(self, namespace: str, key: str) -> Optional[pulumi.Output[str]]:
        if f"{namespace}:{key}" in unset_marker_keys() and self._configs[namespace].get(key) == UNSET:
            return None  # the Pulumi.yaml default "" the CLI hands over for an optional secret: unset
        return self._configs[namespace].get_secret(key)

    @staticmethod
    def keys() -> set[str]:
        """Every key set for this run. The Python language host reads the CLI's config from PULUMI_CONFIG into
        the SDK (`set_all_config` in sdk/python/cmd/pulumi-language-python-exec, pulumi/pulumi@1b59498);
        the offline harness calls the same `set_all_config`, so both reach this through the same map."""
        return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


class _Reader:
    """Parses raw config strings and collects every problem instead of stopping at the first."""

    def __init__(self, source) -> None:
        self.source = source
        self.problems: list[str] = []
        self._empty_reported: set[str] = set()

    @staticmethod
    def full_key(key: str) -> str:
        return key if ":" in key else f"{PROJECT}:{key}"

    def raw(self, key: str) -> Optional[str]:
        """The value as set, or None when unset. "" is unset for a key Pulumi.yaml declares with the
        `default: ""` marker (the CLI passes that default on, declared.py); for any other key an empty string
        is a mistake (`pulumi config set KEY ""`): it is reported once and the key then reads as unset."""
        full_key = self.full_key(key)
        namespace, _, name = full_key.partition(":")
        value = self.source.get(namespace, name)
        if value == UNSET and full_key in unset_marker_keys():
            return None
        if isinstance(value, str) and value.strip() == "":
            if full_key not in self._empty_reported:
                self._empty_reported.add(full_key)
                self.problems.append(f"{full_key} is set to an empty string, which is not a value (an unset key "
                                     f"takes its default). Fix: pulumi config set {full_key} <value>, or "
                                     f"pulumi config rm {full_key}")
            return None
        return value

    def fail(self, key: str, value: Any, allowed: str, example: str = "<value>", fix: Optional[str] = None) -> None:
        key = self.full_key(key)
        fix = fix or f"pulumi config set {key} {example}"
        self.problems.append(f"{key} = {value!r} is not allowed: {allowed}. Fix: {fix}")

    def refuse_or_warn(self, key: str, value: Any, allowed: str, fix: str, refuse: bool,
                       warn_note: str = "") -> None:
        """A problem where `refuse` (prod, or a real `pulumi up`), else a warning (dev, or the offline preview);
        `warn_note` is said only in the warning (e.g. that `pulumi up` will refuse it)."""
        if refuse:
            self.fail(key, value, allowed, fix=fix)
        else:
            pulumi.log.warn(f"{self.full_key(key)} = {value!r}: {allowed}{warn_note}. Fix: {fix}")

    @classmethod
    def path_fix(cls, path: str, example: str = "", verb: str = "set") -> str:
        """`pulumi config set --path KEY[0] VALUE` (or `rm --path`) for a value inside a list or object key."""
        command = f"pulumi config {verb} --path {shlex.quote(cls.full_key(path))}"
        return f"{command} {example}" if example else command

    def missing(self, key: str, example: str) -> None:
        key = self.full_key(key)
        if key in self._empty_reported:
            return  # already reported as an empty string
        self.problems.append(f"{key} is required but not set. Fix: pulumi config set {key} {example}")

    def parsed(self, key: str, default: Any, parse: Callable[[str], Any], allowed: str, example: str,
               fix: Optional[str] = None) -> Any:
        raw = self.raw(key)
        if raw is None:
            return default
        try:
            return parse(raw)
        except (ValueError, TypeError):
            self.fail(key, raw, allowed, example, fix)
            return default

    def required_string(self, key: str, pattern: re.Pattern, allowed: str, example: str) -> str:
        raw = self.raw(key)
        if raw is None:
            self.missing(key, example)
            return ""
        if not pattern.match(raw):
            self.fail(key, raw, allowed, example)
        return raw

    def string(self, key: str, default: str, pattern: Optional[re.Pattern] = None,
               choices: Optional[tuple[str, ...]] = None, allowed: str = "", example: str = "<value>") -> str:
        raw = self.raw(key)
        if raw is None:
            return default
        if choices is not None and raw not in choices:
            self.fail(key, raw, f"one of {', '.join(choices)}", choices[0])
        elif pattern is not None and not pattern.match(raw):
            self.fail(key, raw, allowed, example)
        return raw

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        allowed = f"a whole number from {low} to {high}"
        value = self.parsed(key, default, _parse_int, allowed, str(default))
        if not low <= value <= high:
            self.fail(key, self.raw(key), allowed, str(default))
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return self.parsed(key, default, _parse_bool, "true or false", str(default).lower())

    def cidr(self, key: str, default: str) -> str:
        allowed = "an IPv4 CIDR block such as 10.0.0.0/20"
        return self.parsed(key, default, lambda raw: str(_parse_cidr(raw)), allowed, default)

    def cidr_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        allowed = "a JSON list of IPv4 CIDR blocks, e.g. [\"203.0.113.0/24\"]"
        return self.parsed(key, default, lambda raw: tuple(str(_parse_cidr(c)) for c in _parse_list(raw)),
                           allowed, "", fix=self.path_fix(f"{key}[0]", "203.0.113.0/24"))

    def duration(self, key: str, default: int, low: int, high: int) -> int:
        allowed = f"a duration such as 30s, 2m or 1m30s, from {low}s to {high}s"
        value = self.parsed(key, default, _parse_duration, allowed, f"{default}s")
        if not low <= value <= high:
            self.fail(key, self.raw(key), allowed, f"{default}s")
            return default
        return value

    def json_object(self, key: str) -> dict:
        return self.parsed(key, {}, _parse_object, "a JSON object", "",
                           fix=self.path_fix(f"{key}.<name>", "<value>"))

    def secret(self, key: str) -> Optional[pulumi.Output[str]]:
        namespace, _, name = self.full_key(key).partition(":")
        getter = getattr(self.source, "get_secret", None)
        return getter(namespace, name) if getter else None


def _parse_int(raw: str) -> int:
    if isinstance(raw, bool) or not re.fullmatch(r"-?\d+", str(raw).strip()):
        raise ValueError(raw)
    return int(raw)


def _parse_bool(raw: str) -> bool:
    lowered = str(raw).strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(raw)
    return lowered == "true"


def _parse_cidr(raw: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(str(raw).strip(), strict=True)


def _parse_list(raw: str) -> list:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, list):
        raise ValueError(raw)
    return value


def _parse_object(raw: str) -> dict:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise ValueError(raw)
    return value


def _parse_duration(raw: str) -> int:
    text = str(raw).strip()
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(raw)
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds

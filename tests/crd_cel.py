"""The CEL validation rules (x-kubernetes-validations) of the vendored CRDs (tests/crds/), evaluated offline with
cel-python the way the API server evaluates them when an object is created:
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules

- The object is defaulted from the schema first (the API server defaults before it validates; the algorithm is
  k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting/algorithm.go), so a rule sees e.g. the
  HTTPRoute's default path match.
- A rule on a schema node runs wherever that node is present: on the object, on every item of a list, on every
  value of an additionalProperties map. `self` is the node, typed by its schema (the doc's "type system
  integration" table, code in k8s.io/apiserver/pkg/cel/common/values.go): an object with properties is a
  message whose property names are escaped (`namespace` -> `__namespace__`), an additionalProperties object a
  map (`self.all(k, ...)` iterates its keys), `format: duration`/`date-time` strings durations/timestamps; at
  the root only apiVersion, kind, metadata.name and metadata.generateName are visible.
- Transition rules (they read `oldSelf`) only run on an update, never on a create: they are skipped here.
- Not ported: the set/map equality of x-kubernetes-list-type lists (no vendored rule compares lists), the
  cost budget; celpy's has() answers false where cel-go errors (a missing parent: the vendored rules guard it).
  A rule celpy cannot evaluate raises RuleError, never passes silently, unless UNSUPPORTED names it and why.
"""

from __future__ import annotations

import copy
import datetime
import re
from functools import lru_cache
from typing import Any, Iterator

import celpy
from celpy import celtypes
from celpy.evaluation import base_functions, bool_eq

# rule text -> why celpy cannot evaluate it; such a rule is skipped. Empty: every vendored rule is evaluated.
UNSUPPORTED: dict[str, str] = {}


class RuleViolation(ValueError):
    """The object breaks a rule: the API server would refuse it with this message at this path."""

    def __init__(self, path: str, message: str, rule: str, reason: str = "FieldValueInvalid"):
        super().__init__(f"{path or '<root>'}: Invalid value: {message} ({reason}; rule: {rule})")
        self.path, self.message, self.rule, self.reason = path, message, rule, reason


class RuleError(RuntimeError):
    """A rule (or messageExpression) did not evaluate: the object lacks a field the rule reads (the API server
    refuses it too: an evaluation error fails the rule), or this port lacks something. Loud either way."""


# --- Kubernetes CEL libraries beyond standard CEL, only those the vendored rules use ------------------------
# The environment the API server offers: https://kubernetes.io/docs/reference/using-api/cel/

def _split(text: celtypes.StringType, separator: celtypes.StringType,
           limit: celtypes.IntType | None = None) -> celtypes.ListType:
    """cel-go strings extension `split` (Go strings.SplitN semantics: an empty separator splits into
    characters, limit 0 gives [], a negative limit no limit):
    https://github.com/google/cel-go/blob/master/ext/README.md#split"""
    text, separator, n = str(text), str(separator), -1 if limit is None else int(limit)
    if n == 0:
        return celtypes.ListType([])
    if separator == "":
        parts = list(text) if n < 0 else list(text[:n - 1]) + ([text[n - 1:]] if text[n - 1:] else [])
    else:
        parts = text.split(separator) if n < 0 else text.split(separator, n - 1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _is_url(text: celtypes.StringType) -> celtypes.BoolType:
    """Kubernetes URL library `isURL`: whether Go's url.ParseRequestURI accepts the string
    (k8s.io/apiserver/pkg/cel/library/urls.go; https://pkg.go.dev/net/url#ParseRequestURI). Ported for what
    that parser refuses: control characters, empty, no scheme and not an absolute path, a bad %-escape, a
    non-numeric port."""
    s = str(text)
    if not s or any(ord(c) < 0x20 or ord(c) == 0x7F for c in s) or s.startswith(":"):
        return celtypes.BoolType(False)
    if s == "*":
        return celtypes.BoolType(True)
    scheme = _SCHEME.match(s)
    rest = (s[scheme.end():] if scheme else s).split("?", 1)[0]
    if not rest.startswith("/"):
        return celtypes.BoolType(bool(scheme))  # scheme:opaque is accepted, a relative path is not
    if scheme and rest.startswith("//"):
        host = rest[2:].split("/", 1)[0].rpartition("@")[2]
        port = host.rpartition("]")[2] if host.startswith("[") else host  # an IPv6 literal has colons
        if ":" in port and not port.rpartition(":")[2].isdigit() and not port.endswith(":"):
            return celtypes.BoolType(False)
    return celtypes.BoolType(not _BAD_ESCAPE.search(rest))


def _format(template: celtypes.StringType, args: celtypes.ListType) -> celtypes.StringType:
    """cel-go strings extension `format`, the `%s` verb (the only one the vendored message expressions use;
    any other verb raises, so a new one fails loudly): https://github.com/google/cel-go/blob/master/ext/README.md#format
    A duration prints as CEL's string(duration), seconds with an `s`."""
    values = iter(args)

    def one(match: re.Match) -> str:
        if match.group() == "%%":
            return "%"
        if match.group() != "%s":
            raise TypeError(f"format verb {match.group()!r} is not ported")
        value = next(values)
        if isinstance(value, celtypes.DurationType):
            seconds = value.total_seconds()
            return f"{int(seconds) if seconds.is_integer() else seconds}s"
        if isinstance(value, celtypes.BoolType):
            return "true" if value else "false"
        if isinstance(value, (celtypes.StringType, celtypes.IntType)):
            return str(value)
        raise TypeError(f"format %s of {type(value).__name__} is not ported")

    return celtypes.StringType(re.sub(r"%.", one, str(template)))


def _equals(left: Any, right: Any) -> Any:
    """CEL's heterogeneous equality, which cel-go (so the API server) implements: values of different types are
    unequal, not an error (https://github.com/google/cel-spec/blob/master/doc/langdef.md#equality). celpy 0.5.0
    raises "no matching overload" for e.g. the PodMonitoring port rule `self != 0` on a named (string) port."""
    numbers = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)
    if isinstance(left, numbers) and isinstance(right, numbers) and type(left) is not type(right):
        plain = [float(n) if isinstance(n, celtypes.DoubleType) else int(n) for n in (left, right)]
        return celtypes.BoolType(plain[0] == plain[1])  # numbers compare by value across types
    try:
        return bool_eq(left, right)
    except TypeError:
        return celtypes.BoolType(False)


def _not_equals(left: Any, right: Any) -> Any:
    equal = _equals(left, right)
    return equal if isinstance(equal, celpy.CELEvalError) else celtypes.BoolType(not equal)


LIBRARY = {"split": _split, "isURL": _is_url, "format": _format, "_==_": _equals, "_!=_": _not_equals}
_MACROS = {"has", "dyn", "all", "exists", "exists_one", "map", "filter"}
KNOWN_FUNCTIONS = frozenset(base_functions) | frozenset(LIBRARY) | _MACROS


# --- compiling ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _compiled(expression: str) -> tuple[celpy.Runner, frozenset[str], frozenset[str]]:
    """(program, functions it calls, identifiers it reads); celpy.CELParseError when it does not parse."""
    environment = celpy.Environment()
    tree = environment.compile(expression)
    calls, names = set(), set()
    for node in tree.iter_subtrees():
        if node.data == "member_dot_arg":
            calls.add(str(node.children[1]))
        elif node.data == "ident_arg":
            calls.add(str(node.children[0]))
        elif node.data == "ident":
            names.add(str(node.children[0]))
    return environment.program(tree, functions=LIBRARY), frozenset(calls), frozenset(names)


def unsupported_calls(expression: str) -> set[str]:
    """Functions and methods `expression` calls that neither celpy nor LIBRARY provides."""
    return set(_compiled(expression)[1] - KNOWN_FUNCTIONS)


def is_transition_rule(rule: dict) -> bool:
    return "oldSelf" in _compiled(rule["rule"])[2]


def rules_of(schema: dict, path: str = "") -> Iterator[tuple[str, dict]]:
    """(schema path, rule) for every rule reachable the way check() walks the schema."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule
    for name, child in (schema.get("properties") or {}).items():
        yield from rules_of(child, f"{path}.{name}")
    for key, mark in (("items", "[*]"), ("additionalProperties", "[*]")):
        if isinstance(schema.get(key), dict):
            yield from rules_of(schema[key], path + mark)


# --- the object as the API server shows it to CEL -----------------------------------------------------------

_RESERVED = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
             "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
_ACCESSIBLE = re.compile(r"[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*")


def escape(name: str) -> str | None:
    """A property name as a CEL field (k8s.io/apiserver/pkg/cel/escaping.go); None when not accessible."""
    if not _ACCESSIBLE.fullmatch(name):
        return None
    if name in _RESERVED:
        return f"__{name}__"
    return (name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__")
            .replace("/", "__slash__"))


def _duration(text: str) -> celtypes.DurationType:
    """A `format: duration` string: go-openapi strfmt.ParseDuration units (values.go uses it)."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"\s*(\d*\.?\d+)\s*([a-zµ]+)", text)
    if text.strip() == "0":
        return celtypes.DurationType(0)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s", "", text) \
            or any(u not in units for _, u in parts):
        raise RuleError(f"duration {text!r} is not parsed here (units {sorted(units)})")
    return celtypes.DurationType(datetime.timedelta(seconds=sum(float(n) * units[u] for n, u in parts)))


def _typed(schema: dict | None) -> bool:
    """False for an undeclared property or an "unknown type" (no type, preserve-unknown-fields): not visible."""
    return bool(schema and (schema.get("type") or schema.get("x-kubernetes-int-or-string")))


def to_cel(value: Any, schema: dict, root: bool = False) -> Any:
    if value is None:
        return None
    if schema.get("x-kubernetes-int-or-string"):
        return celtypes.IntType(value) if isinstance(value, int) else celtypes.StringType(value)
    kind = schema.get("type")
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return celtypes.MapType({celtypes.StringType(k): to_cel(v, schema["additionalProperties"])
                                 for k, v in value.items()})
    if kind == "object":
        fields = {}
        for name, child in value.items():
            if root and name == "metadata":  # only these two are visible: the doc's "validation rules" section
                fields[name] = celtypes.MapType({celtypes.StringType(k): celtypes.StringType(v) for k, v in
                                                 child.items() if k in ("name", "generateName")})
            elif escape(name) and _typed((schema.get("properties") or {}).get(name)):
                fields[escape(name)] = to_cel(child, schema["properties"][name])
        return celtypes.MapType({celtypes.StringType(k): v for k, v in fields.items()})
    if kind == "array":
        return celtypes.ListType([to_cel(v, schema.get("items") or {}) for v in value])
    if kind == "string":
        if schema.get("format") == "duration":
            return _duration(value)
        if schema.get("format") in ("date-time", "datetime"):
            return celtypes.TimestampType(value)
        if schema.get("format") in ("date", "byte"):
            raise RuleError(f"format {schema['format']} is not ported (no vendored schema used it)")
        return celtypes.StringType(value)
    scalars = {"integer": celtypes.IntType, "number": celtypes.DoubleType, "boolean": celtypes.BoolType}
    if kind in scalars:
        return scalars[kind](value)
    raise RuleError(f"schema type {kind!r} is not ported")


def default(value: Any, schema: dict) -> None:
    """Structural defaulting in place (defaulting/algorithm.go): missing properties get their default, then
    every value is defaulted by its own schema."""
    if isinstance(value, dict):
        for name, child in (schema.get("properties") or {}).items():
            if "default" in child and name not in value:
                value[name] = copy.deepcopy(child["default"])
        for name, child in value.items():
            sub = (schema.get("properties") or {}).get(name, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                default(child, sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            default(item, schema["items"])


# --- evaluating --------------------------------------------------------------------------------------------

def _evaluate(expression: str, self: Any, what: str) -> Any:
    try:
        return _compiled(expression)[0].evaluate({"self": self})
    except (celpy.CELEvalError, celpy.CELParseError, TypeError, ValueError, KeyError) as error:
        detail = str(error.args[0] if error.args else error)[:300]
        raise RuleError(f"{what} {expression!r} did not evaluate: {detail}") from error


def _check_node(value: Any, schema: dict, path: str) -> None:
    rules = [r for r in schema.get("x-kubernetes-validations", [])
             if r["rule"] not in UNSUPPORTED and not is_transition_rule(r)]
    if rules:
        self = to_cel(value, schema, root=not path)
        for rule in rules:
            result = _evaluate(rule["rule"], self, f"{path or '<root>'}: rule")
            if not isinstance(result, celtypes.BoolType):
                raise RuleError(f"{path or '<root>'}: rule {rule['rule']!r} gave {result!r}, not a bool")
            if not result:
                if "messageExpression" in rule:
                    message = str(_evaluate(rule["messageExpression"], self, f"{path or '<root>'}: messageExpression"))
                else:
                    message = rule.get("message") or f"failed rule: {rule['rule']}"
                raise RuleViolation((path + rule.get("fieldPath", "")).lstrip("."), message, rule["rule"],
                                    rule.get("reason", "FieldValueInvalid"))
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, child in value.items():
            if name in properties:
                _check_node(child, properties[name], f"{path}.{name}" if path else name)
            elif isinstance(schema.get("additionalProperties"), dict):
                _check_node(child, schema["additionalProperties"], f"{path}[{name}]")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _check_node(item, schema["items"], f"{path}[{index}]")


def check(manifest: dict, schema: dict) -> None:
    """Raises RuleViolation on the first rule `manifest` breaks (RuleError if a rule cannot be evaluated)."""
    defaulted = copy.deepcopy(manifest)
    default(defaulted, schema)
    _check_node(defaulted, schema, "")

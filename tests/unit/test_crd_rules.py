"""The vendored CRDs' CEL rules (x-kubernetes-validations), evaluated offline by tests/crd_cel.py through
crd_schema.validate: every rule compiles with what celpy and the ported Kubernetes libraries provide, every
rendered custom resource (tests/golden/) passes them, and an object that breaks one is refused with the
rule's own message at the right path, as the API server would refuse it."""

from __future__ import annotations

import copy
from pathlib import Path

import celpy
import pytest
import yaml

from tests import crd_cel, crd_schema
from tests.crd_cel import RuleError, RuleViolation
from tests.golden_manifests import GOLDEN_DIR

GOLDEN = sorted(p for p in GOLDEN_DIR.glob("*/*.yaml") if crd_schema.is_custom(yaml.safe_load(p.read_text())))


def golden(case: str, kind: str) -> dict:
    (path,) = [p for p in GOLDEN if p.parent.name == case and yaml.safe_load(p.read_text())["kind"] == kind
               and not p.name.endswith("-https-redirect.yaml")]
    return yaml.safe_load(path.read_text())


def redirect_route() -> dict:
    return yaml.safe_load((GOLDEN_DIR / "front-door" / "httproute-airflow-airflow-ui-https-redirect.yaml").read_text())


def all_rules(node) -> list[dict]:
    """Every rule anywhere under `node`, however deep (also where check() would not look)."""
    if isinstance(node, dict):
        return list(node.get("x-kubernetes-validations", [])) + [r for v in node.values() for r in all_rules(v)]
    if isinstance(node, list):
        return [r for v in node for r in all_rules(v)]
    return []


# --- the rules themselves ----------------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(crd_schema.served_schemas()), ids="/".join)
def test_every_rule_of_a_served_version_compiles_and_calls_only_known_functions(key):
    schema = crd_schema.served_schemas()[key]
    reached = [rule for _, rule in crd_cel.rules_of(schema)]
    assert len(reached) == len(all_rules(schema)), "a rule sits where check() does not walk (allOf/anyOf...?)"
    for rule in reached:
        for expression in filter(None, (rule["rule"], rule.get("messageExpression"))):
            if expression in crd_cel.UNSUPPORTED:
                continue
            crd_cel._compiled(expression)  # raises celpy.CELParseError
            assert not crd_cel.unsupported_calls(expression), \
                f"{key}: {expression!r} calls {crd_cel.unsupported_calls(expression)}: port them (tests/crd_cel.py)"


def test_the_rules_are_there_and_the_allowlist_is_small_and_current():
    texts = {rule["rule"] for schema in crd_schema.served_schemas().values() for _, rule in crd_cel.rules_of(schema)}
    assert len(texts) > 80  # Gateway, HTTPRoute, both policies and PodMonitoring all carry rules
    assert len(crd_cel.UNSUPPORTED) <= 3
    for rule, reason in crd_cel.UNSUPPORTED.items():
        assert rule in texts and reason, rule


def test_an_unknown_function_is_reported_not_skipped(monkeypatch):
    assert crd_cel.unsupported_calls("self.lowerAscii() == 'a' && self.split('/').size() > 0") == {"lowerAscii"}
    schema = {"type": "string", "x-kubernetes-validations": [{"rule": "self.lowerAscii() == 'a'", "message": "m"}]}
    with pytest.raises(RuleError, match="lowerAscii"):
        crd_cel.check("A", schema)
    monkeypatch.setattr(crd_cel, "UNSUPPORTED", {"self.lowerAscii() == 'a'": "only by being listed, with a reason"})
    crd_cel.check("A", schema)
    with pytest.raises(celpy.CELParseError):
        crd_cel._compiled("self.(")


# --- the rendered objects pass -----------------------------------------------------------------------------

def test_golden_custom_resources_cover_every_vendored_kind():
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in GOLDEN}
    assert kinds == {"Gateway", "HTTPRoute", "HealthCheckPolicy", "GCPBackendPolicy", "PodMonitoring"}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_custom_resource_passes_its_cel_rules(path: Path):
    crd_schema.validate(yaml.safe_load(path.read_text()))


# --- one broken rule each ----------------------------------------------------------------------------------

def _set(manifest: dict, path: tuple, value) -> dict:
    manifest = copy.deepcopy(manifest)
    node = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return manifest


def _appended(route: dict, extra_filter: dict) -> dict:
    route["spec"]["rules"][0]["filters"].append(extra_filter)
    return route


BROKEN = [
    ("gateway: two listeners named https", lambda: _set(golden("front-door", "Gateway"),
                                                        ("spec", "listeners", 1, "name"), "https"),
     "spec.listeners", "Listener name must be unique within the Gateway"),
    ("gateway: a Hostname address that is no hostname", lambda: _set(golden("front-door", "Gateway"), (
        "spec", "addresses"), [{"type": "Hostname", "value": "Airflow_UI.example.com"}]),
     "spec.addresses[0]", "Hostname value must be empty or contain only valid characters"),
    ("gateway: tls on the HTTP listener", lambda: _set(golden("front-door", "Gateway"), (
        "spec", "listeners", 1, "tls"), {"mode": "Terminate", "certificateRefs": [{"name": "cert"}]}),
     "spec.listeners", "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"),
    ("httproute: a RequestRedirect filter that also sets urlRewrite", lambda: _set(redirect_route(), (
        "spec", "rules", 0, "filters", 0, "urlRewrite"), {"hostname": "elsewhere.example.com"}),
     "spec.rules[0].filters[0]", "filter.urlRewrite must be nil if the filter.type is not URLRewrite"),
    ("httproute: a RequestRedirect filter that also sets cors", lambda: _set(redirect_route(), (
        "spec", "rules", 0, "filters", 0, "cors"), {"allowOrigins": ["https://elsewhere.example.com"]}),
     "spec.rules[0].filters[0]", "filter.cors must be nil if the filter.type is not CORS"),
    ("httproute: a redirect and a rewrite in one rule", lambda: _appended(redirect_route(), {
        "type": "URLRewrite", "urlRewrite": {"hostname": "elsewhere.example.com"}}),
     "spec.rules[0].filters", "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite"),
    ("httproute: a path prefix with //", lambda: _set(golden("front-door", "HTTPRoute"), (
        "spec", "rules", 0, "matches"), [{"path": {"type": "PathPrefix", "value": "/api//v2"}}]),
     "spec.rules[0].matches[0].path", "must not contain '//'"),
    ("healthcheckpolicy: timeout above the interval", lambda: _set(golden("front-door", "HealthCheckPolicy"), (
        "spec", "default", "timeoutSec"), 30),
     "spec.default", "timeOutSec cannot exceed checkIntervalSec"),
    ("podmonitoring: scrape timeout above the interval (messageExpression, durations)", lambda: _set(
        golden("dev", "PodMonitoring"), ("spec", "endpoints", 0, "timeout"), "2m30s"),
     "spec.endpoints[0]", "scrape timeout (150s) must not be greater than scrape interval (120s)"),
    ("podmonitoring: relabelling onto a protected label", lambda: _set(golden("dev", "PodMonitoring"), (
        "spec", "endpoints", 0, "metricRelabeling", 0, "targetLabel"), "namespace"),
     "spec.endpoints[0].metricRelabeling[0].targetLabel", 'cannot relabel onto protected label "namespace"'),
    ("podmonitoring: port 0 (int-or-string, heterogeneous !=)", lambda: _set(golden("dev", "PodMonitoring"), (
        "spec", "endpoints", 0, "port"), 0),
     "spec.endpoints[0].port", "Port is required"),
    ("podmonitoring: credentials in the proxy URL (isURL)", lambda: _set(golden("dev", "PodMonitoring"), (
        "spec", "endpoints", 0, "proxyUrl"), "http://user:pw@proxy.internal:3128"),
     "spec.endpoints[0].proxyUrl", "failed rule: isURL(self) && !self.matches('@')"),
]


@pytest.mark.parametrize("label, build, path, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_rule_is_refused_with_its_message_and_path(label, build, path, message):
    manifest = build()
    with pytest.raises(RuleViolation) as refused:
        crd_schema.validate(manifest)  # the structural schema passes: only the rule refuses it
    assert refused.value.path == path
    assert refused.value.message.startswith(message), refused.value.message


def test_a_missing_field_a_rule_reads_fails_loudly():
    # tls mode defaults to Terminate; the rule then reads certificateRefs, absent: an evaluation error, which
    # the API server reports as a failed rule too.
    gateway = _set(golden("front-door", "Gateway"), ("spec", "listeners", 0, "tls"), {})
    with pytest.raises(RuleError, match=r"spec.listeners\[0\].tls: rule .*certificateRefs"):
        crd_schema.validate(gateway)


# --- the semantics ported (small schemas) ------------------------------------------------------------------

def _rule(rule: str, **extra) -> list[dict]:
    return [{"rule": rule, "message": f"broke {rule}", **extra}]


def test_a_rule_runs_only_where_its_node_is_present_and_on_each_item_and_map_value():
    schema = {"type": "object", "properties": {
        "absent": {"type": "string", "x-kubernetes-validations": _rule("false")},
        "items": {"type": "array", "items": {"type": "integer", "x-kubernetes-validations": _rule("self < 3")}},
        "labels": {"type": "object", "additionalProperties": {"type": "string",
                                                              "x-kubernetes-validations": _rule("self != 'bad'")},
                   "x-kubernetes-validations": _rule("self.all(key, !key.startsWith('x/'))")}}}
    crd_cel.check({"items": [1, 2], "labels": {"a/b": "ok"}}, schema)
    with pytest.raises(RuleViolation) as refused:
        crd_cel.check({"items": [1, 2, 3]}, schema)
    assert refused.value.path == "items[2]"
    with pytest.raises(RuleViolation, match="key.startsWith"):  # a map rule iterates the keys
        crd_cel.check({"labels": {"x/y": "ok"}}, schema)
    with pytest.raises(RuleViolation) as refused:
        crd_cel.check({"labels": {"k": "bad"}}, schema)
    assert refused.value.path == "labels[k]"


def test_transition_rules_are_skipped_on_create():
    schema = {"type": "string", "x-kubernetes-validations": _rule("self == oldSelf") + _rule("self != 'x'")}
    assert crd_cel.is_transition_rule(schema["x-kubernetes-validations"][0])
    crd_cel.check("a", schema)
    with pytest.raises(RuleViolation, match="self != 'x'"):
        crd_cel.check("x", schema)


def test_property_names_are_escaped_presence_is_has_and_the_root_sees_name_only():
    schema = {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {"namespace": {"type": "string"}, "x-y": {"type": "integer"}},
                 "x-kubernetes-validations": _rule("!has(self.__namespace__) || self.x__dash__y > 0")}},
        "x-kubernetes-validations": _rule("self.metadata.name == 'n' && !has(self.metadata.namespace)")}
    crd_cel.check({"metadata": {"name": "n", "namespace": "ns"}, "spec": {}}, schema)
    crd_cel.check({"metadata": {"name": "n"}, "spec": {"namespace": "a", "x-y": 1}}, schema)
    with pytest.raises(RuleViolation, match="x__dash__y"):
        crd_cel.check({"metadata": {"name": "n"}, "spec": {"namespace": "a", "x-y": 0}}, schema)
    assert crd_cel.escape("a__b.c/d") == "a__underscores__b__dot__c__slash__d" and crd_cel.escape("1a") is None


def test_defaults_are_applied_before_the_rules_and_field_path_and_reason_are_reported():
    schema = {"type": "object", "properties": {
        "mode": {"type": "string", "default": "Strict"},
        "spec": {"type": "object", "properties": {"n": {"type": "integer"}},
                 "x-kubernetes-validations": _rule("self.n > 0", fieldPath=".n", reason="FieldValueForbidden")}},
        "x-kubernetes-validations": _rule("self.mode == 'Strict'")}
    crd_cel.check({"spec": {"n": 1}}, schema)
    with pytest.raises(RuleViolation) as refused:
        crd_cel.check({"spec": {"n": 0}}, schema)
    assert (refused.value.path, refused.value.reason) == ("spec.n", "FieldValueForbidden")


def test_the_ported_kubernetes_functions():
    def run(expression: str, value="") -> object:
        return crd_cel._compiled(expression)[0].evaluate({"self": celpy.celtypes.StringType(value)})

    assert run("self.split('/')", "a/b/c") == ["a", "b", "c"] and run("self.split('/', 2)", "a/b/c") == ["a", "b/c"]
    assert run("self.split('')", "ab") == ["a", "b"] and run("self.split('/', 0)", "a/b") == []
    for url, ok in [("http://proxy.internal:3128", True), ("https://[::1]:8080/p?q=1", True), ("/relative", True),
                    ("mailto:ops@example.com", True), ("proxy.internal", False), ("", False),
                    ("http://proxy:port", False), ("http://proxy/%zz", False), ("http://a b\n", False)]:
        assert run("isURL(self)", url) == ok, url
    assert run("'%s and %s (%s%%)'.format([self, 7, true])", "x") == "x and 7 (true%)"
    assert run("'x' != 0") == True and run("'x' == 0") == False and run("1 == 1.0") == True  # noqa: E712

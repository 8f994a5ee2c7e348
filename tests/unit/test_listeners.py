"""Every listener a rendered container opens is used by something rendered, in every golden case.

- A `/metrics` endpoint is scraped: some PodMonitoring selects the pod and names that port. An unread one is
  attack surface, and an invitation to start billing series nobody charts (docs/operations.md, Metrics).
- A declared containerPort is reached by something: a probe of its container, a Service selecting the pod,
  a PodMonitoring, or a NetworkPolicy opening it (everything else is denied by default-deny-ingress).

What a container serves is worked out from its own args and env with a model of each tool's flags
(SERVED below, each sourced), not from its declared ports: a flag opens a listener whether or not the pod
declares it. An image with no model fails, so a new kind of container brings its rule. The golden files are
the input: tests/unit/test_golden_manifests.py pins them to today's render."""

from __future__ import annotations

import yaml

from components.config import CLOUD_SQL_PROXY_IMAGE, GIT_SYNC_IMAGE, STATSD_EXPORTER_IMAGE
from tests.golden_manifests import GOLDEN_DIR, MATRIX
from tests.unit.container_helpers import every_container, port_number

Served = dict[int, set[str]]  # port -> HTTP paths


def flags(container: dict) -> dict[str, str]:
    """`--name=value` args (and bare `--name` as "true"); the tools here accept both spellings."""
    found = {}
    for arg in container.get("args", []):
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            found[name] = value if "=" in arg else "true"
    return found


def env_values(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def truthy(value: str | None) -> bool:
    return (value or "false").lower() in ("1", "t", "true")  # Go's strconv.ParseBool


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def cloud_sql_proxy(container: dict) -> Served:
    """GoogleCloudPlatform/cloud-sql-proxy v2.25.3 (31c3b33e3f85f294799c1136655efce52558b62d) cmd/root.go:
    one HTTP server on --http-port (default 9090) when --prometheus (/metrics) or --health-check (/startup,
    /readiness, /liveness); an admin server on --admin-port (9091) with --debug or --quitquitquit."""
    f = flags(container)
    served: Served = {}
    http = served.setdefault(int(f.get("http-port", 9090)), set())
    if truthy(f.get("prometheus")):
        http.add("/metrics")
    if truthy(f.get("health-check")):
        http |= {"/startup", "/readiness", "/liveness"}
    admin = {"/debug/pprof/"} if truthy(f.get("debug")) else set()
    admin |= {"/quitquitquit"} if truthy(f.get("quitquitquit")) else set()
    if admin:
        served[int(f.get("admin-port", 9091))] = admin
    return {port: paths for port, paths in served.items() if paths}


def git_sync(container: dict) -> Served:
    """kubernetes/git-sync v4.7.1 (d9d12f7e9839266ceb1e2719488c1b7112316cb3) main.go: an HTTP server only with
    --http-bind/GITSYNC_HTTP_BIND, serving `/`, plus /metrics with GITSYNC_HTTP_METRICS (default false) and
    /debug/pprof/ with GITSYNC_HTTP_PPROF."""
    f, e = flags(container), env_values(container)
    bind = f.get("http-bind") or e.get("GITSYNC_HTTP_BIND")
    if not bind:
        return {}
    paths = {"/"}
    if truthy(f.get("http-metrics") or e.get("GITSYNC_HTTP_METRICS")):
        paths.add("/metrics")
    if truthy(f.get("http-pprof") or e.get("GITSYNC_HTTP_PPROF")):
        paths.add("/debug/pprof/")
    return {port_of(bind): paths}


def statsd_exporter(container: dict) -> Served:
    """prometheus/statsd_exporter v0.28.0 (c0a390a2c43f77863278615b47d46e886bdca726) main.go: always a web
    server on --web.listen-address (default :9102) with --web.telemetry-path (default /metrics) and /-/healthy."""
    f = flags(container)
    return {port_of(f.get("web.listen-address", ":9102")): {f.get("web.telemetry-path", "/metrics"), "/-/healthy"}}


def airflow(container: dict) -> Served:
    """Airflow 3 pushes its metrics (StatsD or OpenTelemetry) and serves no Prometheus endpoint:
    https://airflow.apache.org/docs/apache-airflow/stable/administration-and-deployment/logging-monitoring/metrics.html
    Its HTTP servers (api-server, log servers) are held to the declared-port rule below."""
    return {}


SERVED = {CLOUD_SQL_PROXY_IMAGE: cloud_sql_proxy, GIT_SYNC_IMAGE: git_sync, STATSD_EXPORTER_IMAGE: statsd_exporter}


def served(container: dict, airflow_image: str) -> Served:
    model = SERVED.get(container["image"]) or (airflow if container["image"] == airflow_image else None)
    assert model, f"{container['name']}: no model of what {container['image']} serves; add one to SERVED"
    return model(container)


# --- the rendered objects --------------------------------------------------------------------------

def case_objects(case: str) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((GOLDEN_DIR / case).glob("*.yaml"))]


def pods(objects: list[dict]) -> list[tuple[str, dict, dict]]:
    """(where, labels, pod spec) of every pod the stack runs, the task pod template included."""
    found = []
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        template = {"Deployment": lambda o: o["spec"]["template"], "Job": lambda o: o["spec"]["template"],
                    "CronJob": lambda o: o["spec"]["jobTemplate"]["spec"]["template"]}.get(obj["kind"])
        if template:
            found.append((where, template(obj)["metadata"].get("labels", {}), template(obj)["spec"]))
        elif obj["kind"] == "ConfigMap" and "pod_template_file.yaml" in obj.get("data", {}):
            pod = yaml.safe_load(obj["data"]["pod_template_file.yaml"])
            found.append((where + ":pod_template_file", pod["metadata"].get("labels", {}), pod["spec"]))
    return found


def selects(selector: dict, labels: dict) -> bool:
    """A Service's plain selector, or a label selector with matchLabels and In/NotIn/Exists expressions."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return bool(selector) and selector.items() <= labels.items()
    ops = {"In": lambda e: labels.get(e["key"]) in e["values"], "NotIn": lambda e: labels.get(e["key"]) not in e["values"],
           "Exists": lambda e: e["key"] in labels, "DoesNotExist": lambda e: e["key"] not in labels}
    return selector.get("matchLabels", {}).items() <= labels.items() and \
        all(ops[e["operator"]](e) for e in selector.get("matchExpressions", []))


def scraped_ports(objects: list[dict], labels: dict, container: dict) -> set[tuple[int, str]]:
    return {(port_number(container, ep["port"]), ep.get("path", "/metrics"))
            for obj in objects if obj["kind"] == "PodMonitoring" and selects(obj["spec"]["selector"], labels)
            for ep in obj["spec"]["endpoints"]
            if isinstance(ep["port"], int) or ep["port"] in {p["name"] for p in container.get("ports", [])}}


def reached_ports(objects: list[dict], labels: dict, container: dict) -> set[int]:
    """Ports of `container` that a probe, a Service, a PodMonitoring or a NetworkPolicy opening points at."""
    refs = [probe[kind]["port"] for probe in (container.get(p) for p in ("startupProbe", "readinessProbe",
                                                                          "livenessProbe")) if probe
            for kind in ("httpGet", "tcpSocket", "grpc") if kind in probe]
    for obj in objects:
        spec = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
        if obj["kind"] == "Service" and selects(spec.get("selector", {}), labels):
            refs += [p.get("targetPort", p["port"]) for p in spec["ports"]]
        elif obj["kind"] == "PodMonitoring" and selects(spec["selector"], labels):
            refs += [ep["port"] for ep in spec["endpoints"]]
        elif obj["kind"] == "NetworkPolicy" and selects(spec["podSelector"], labels):
            refs += [p["port"] for rule in spec.get("ingress", []) for p in rule.get("ports", []) if "port" in p]
    names = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    return {names.get(ref, ref) for ref in refs}


def unread_endpoints(case: str) -> list[str]:
    objects = case_objects(case)
    airflow_image = next(c["image"] for _, _, pod in pods(objects) for c in every_container(pod)
                         if c["name"] == "scheduler")
    problems = []
    for where, labels, pod in pods(objects):
        for container in every_container(pod):
            name = f"{case} {where} {container['name']}"
            scraped = scraped_ports(objects, labels, container)
            problems += [f"{name}: :{port}/metrics is served but no PodMonitoring scrapes it"
                         for port, paths in served(container, airflow_image).items()
                         if "/metrics" in paths and (port, "/metrics") not in scraped]
            reached = reached_ports(objects, labels, container)
            problems += [f"{name}: port {p['containerPort']} is declared but nothing rendered reaches it"
                         for p in container.get("ports", []) if p["containerPort"] not in reached]
    return problems


def test_every_listener_of_every_case_is_scraped_probed_or_reached():
    problems = [problem for case in sorted(MATRIX) for problem in unread_endpoints(case)]
    assert not problems, "\n".join(problems)


def test_the_models_see_the_metrics_switches():
    """The check above is only as good as the models: each reads the switch that turns /metrics on."""
    proxy = {"image": CLOUD_SQL_PROXY_IMAGE, "args": ["--health-check", "--http-port=9090"]}
    assert cloud_sql_proxy(proxy) == {9090: {"/startup", "/readiness", "/liveness"}}
    assert "/metrics" in cloud_sql_proxy({**proxy, "args": [*proxy["args"], "--prometheus"]})[9090]
    sync = {"image": GIT_SYNC_IMAGE, "env": [{"name": "GITSYNC_HTTP_BIND", "value": "0.0.0.0:8081"}]}
    assert git_sync(sync) == {8081: {"/"}}
    assert git_sync({**sync, "env": [*sync["env"], {"name": "GITSYNC_HTTP_METRICS", "value": "true"}]}) == \
        {8081: {"/", "/metrics"}}
    assert git_sync({"image": GIT_SYNC_IMAGE, "env": []}) == {}
    assert statsd_exporter({"args": []}) == {9102: {"/metrics", "/-/healthy"}}

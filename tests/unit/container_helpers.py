"""Small readers of container specs shared by the workload tests."""

from __future__ import annotations


def containers(pod: dict) -> dict[str, dict]:
    return {c["name"]: c for c in pod["containers"]}


def init_containers(pod: dict) -> dict[str, dict]:
    return {c["name"]: c for c in pod.get("initContainers", [])}


def every_container(pod: dict) -> list[dict]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def env(container: dict) -> dict[str, dict]:
    entries = container.get("env", [])
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"{container['name']}: duplicate env names {names}"
    return {e["name"]: e for e in entries}


def env_value(container: dict, name: str) -> str:
    entry = env(container)[name]
    assert set(entry) == {"name", "value"}, f"{container['name']}: {name} is not a plain value: {entry}"
    return entry["value"]


def port_number(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container.get("ports", []) if p["name"] == port)


def command_line(container: dict) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def airflow_command_line(container: dict) -> list[str]:
    """The command line a container runs, looking through the SIGTERM relay when it has one."""
    from components.airflow.pod.shutdown import command_run

    return command_run(command_line(container))


def relayed_airflow_command(container: dict) -> list[str]:
    """The Airflow command line of a container that runs it under the SIGTERM relay
    (components/airflow/pod/shutdown.py) behind the image's entrypoint; raises if it does not."""
    from components.airflow.pod.shutdown import relayed_command

    assert "command" not in container, "the image's entrypoint (dumb-init) must stay PID 1"
    return relayed_command(container["args"])

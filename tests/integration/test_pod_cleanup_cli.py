"""The pinned cncf.kubernetes provider has `airflow kubernetes cleanup-pods` with the flags the rendered
CronJob passes: its --help lists them, and Airflow's own CLI parser accepts the rendered argv with the
rendered values (components/airflow/pod_cleanup.py)."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import run_stack

from .pod import AIRFLOW_VENV

PARSE = """
import json, sys
from airflow.cli.cli_parser import get_parser
args = get_parser().parse_args(sys.argv[1:])
print(json.dumps({"namespace": args.namespace, "pending": args.min_pending_minutes,
                  "completed": args.min_completed_minutes, "func": args.func.__name__}))
"""


def rendered_argv() -> list[str]:
    job = next(m for _, m in run_stack("dev").kubernetes_objects()
               if m["kind"] == "CronJob" and m["metadata"]["name"] == "airflow-pod-cleanup")
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    return [*container.get("command", []), *container.get("args", [])]


def test_the_rendered_cleanup_command_exists_with_its_flags(tmp_path):
    argv = rendered_argv()
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": f"{AIRFLOW_VENV / 'bin'}:/usr/bin:/bin"}
    help_text = subprocess.run([str(AIRFLOW_VENV / "bin" / "airflow"), "kubernetes", "cleanup-pods", "--help"],
                               env=env, capture_output=True, text=True, timeout=120)
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    for option in (a for a in argv if a.startswith("--")):
        assert option in help_text.stdout, option
    parsed = subprocess.run([str(AIRFLOW_VENV / "bin" / "python"), "-c", PARSE, *argv[1:]], env=env,
                            capture_output=True, text=True, timeout=120)
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    values = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert values["namespace"] == argv[argv.index("--namespace") + 1]
    assert values["pending"] == int(argv[argv.index("--min-pending-minutes") + 1])
    assert values["completed"] == int(argv[argv.index("--min-completed-minutes") + 1])
    assert values["func"] == "cleanup_pods"

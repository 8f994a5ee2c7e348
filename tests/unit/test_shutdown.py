"""The SIGTERM relay of the Airflow containers (components/airflow/pod/shutdown.py): what is rendered, and
what the relay does with real processes, including the failure it exists for (a SystemExit raised by
a signal handler inside a finalizer is dropped by the interpreter; Airflow 3.3.2's handlers do that)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from components.airflow.pod import shutdown
from components.airflow.deployment import deployment
from components.airflow.workload_spec import API_PORT
from components.airflow.dag_processor import dag_processor_deployment
from tests.unit.container_helpers import containers, relayed_airflow_command
from tests.unit.test_dag_source import bundle_spec
from tests.unit.test_workload_spec import make_spec

RELAYED = {"scheduler": ["airflow", "scheduler"], "dag-processor": ["airflow", "dag-processor"],
           "triggerer": ["airflow", "triggerer"], "api-server": ["airflow", "api-server", "--port", str(API_PORT)]}

# Airflow's pattern (SchedulerJobRunner._exit_gracefully, DagFileProcessorManager._exit_gracefully): the
# handler raises SystemExit. The main thread sits in a finalizer when the first SIGTERM lands, so the
# interpreter reports "Exception ignored in ..." and carries on; a later SIGTERM lands in plain code.
SWALLOWS_FIRST_SIGTERM = textwrap.dedent("""\
    import signal, sys, time

    def exit_gracefully(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, exit_gracefully)

    class Finalized:
        def __del__(self):
            print("in-finalizer", flush=True)
            time.sleep(30)

    item = Finalized()
    del item
    print("survived the first SIGTERM", flush=True)
    while True:
        time.sleep(0.05)
""")
IGNORES_SIGTERM = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                   "print('ready', flush=True)\ntime.sleep(60)\n")
EXITS_ON_SIGTERM = ("import signal, subprocess, sys, time\n"
                    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))\n"
                    "grandchild = subprocess.Popen(['sleep', '60'])\n"
                    "print(grandchild.pid, flush=True)\n"
                    "time.sleep(60)\n")
SECOND, KILL = 1.0, 2.5  # the relay's timers, shortened for the tests


def start(code: str | None, second: float = SECOND, kill: float = KILL, argv: list[str] | None = None):
    """The relay as rendered (python -c <script> <command>), in a session of its own like a container's
    PID 1 child under dumb-init."""
    command = argv or [sys.executable, "-c", code]
    return subprocess.Popen([sys.executable, "-c", shutdown.relay_script(second, kill), *command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def stop(relay: subprocess.Popen) -> tuple[float, int, str]:
    """SIGTERM to the relay; (seconds until it exited, its exit status, its stderr)."""
    started = time.monotonic()
    os.kill(relay.pid, signal.SIGTERM)
    try:
        code = relay.wait(timeout=30)
    finally:
        if relay.poll() is None:
            for child in psutil.Process(relay.pid).children(recursive=True):
                child.kill()
            relay.kill()
    return time.monotonic() - started, code, relay.stderr.read()


def gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


# --- rendered ---------------------------------------------------------------------------------

def test_every_airflow_server_process_runs_under_the_relay_behind_the_image_entrypoint():
    spec = make_spec()
    rendered = deployment(spec)
    main = containers(rendered["spec"]["template"]["spec"])
    for name, command in RELAYED.items():
        assert relayed_airflow_command(main[name]) == command, name
    assert rendered["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == shutdown.GRACE_PERIOD_SECONDS
    processor = containers(dag_processor_deployment(bundle_spec(replicas=2))["spec"]["template"]["spec"])[
        "dag-processor"]
    assert relayed_airflow_command(processor) == RELAYED["dag-processor"]


def test_the_relay_escalates_inside_the_grace_period_and_survives_the_kubelet():
    # The relay's SIGKILL comes before the kubelet's, so a container always ends by itself.
    assert 0 < shutdown.SECOND_SIGTERM_AFTER_SECONDS < shutdown.SIGKILL_AFTER_SECONDS < shutdown.GRACE_PERIOD_SECONDS
    # The kubelet expands $(NAME) in args; the script must reach python as written.
    assert "$(" not in shutdown.relay_script()
    with pytest.raises(ValueError):
        shutdown.relay_script(5, 5)


# --- behaviour ---------------------------------------------------------------------------------

def test_sigterm_reaches_the_process_group_and_the_exit_status_comes_back():
    relay = start(EXITS_ON_SIGTERM)
    grandchild = int(relay.stdout.readline())
    seconds, code, stderr = stop(relay)
    assert code == 3, stderr
    assert seconds < SECOND, "no escalation for a process that exits on the first SIGTERM"
    assert gone(grandchild), "the grandchild (like a DAG parser) gets SIGTERM from the group signal too"


def test_a_sigterm_dropped_inside_a_finalizer_is_sent_again():
    # Without the relay the process outlives SIGTERM: the failure the relay exists for is real.
    bare = subprocess.Popen([sys.executable, "-c", SWALLOWS_FIRST_SIGTERM], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert bare.stdout.readline().strip() == "in-finalizer"
    bare.send_signal(signal.SIGTERM)
    assert bare.stdout.readline().strip() == "survived the first SIGTERM"
    time.sleep(SECOND + 0.5)
    assert bare.poll() is None
    bare.kill()
    bare.communicate()

    relay = start(SWALLOWS_FIRST_SIGTERM)
    assert relay.stdout.readline().strip() == "in-finalizer"
    seconds, code, stderr = stop(relay)
    assert "Exception ignored" in stderr and "SIGTERM again" in stderr, stderr
    assert code == 0, stderr  # ended by its own handler, on the second SIGTERM
    assert SECOND <= seconds < KILL, seconds


def test_a_process_ignoring_sigterm_is_killed_before_the_grace_period_ends():
    relay = start(IGNORES_SIGTERM)
    assert relay.stdout.readline().strip() == "ready"
    seconds, code, stderr = stop(relay)
    assert code == 128 + signal.SIGKILL, stderr
    assert KILL <= seconds < KILL + 2, seconds
    assert "SIGKILL" in stderr


def test_sigterm_before_airflow_started_still_stops_it():
    relay = start(None, argv=["sleep", "60"])
    seconds, code, _ = stop(relay)  # at once: the handler may run before or after the child exists
    assert code in (128 + signal.SIGTERM, -signal.SIGTERM) and seconds < SECOND


def test_other_signals_are_passed_on_and_do_not_stop_the_relay():
    relay = start("import signal, sys, time\n"
                  "signal.signal(signal.SIGUSR2, lambda *_: print('usr2', flush=True))\n"
                  "signal.signal(signal.SIGHUP, lambda *_: print('hup', flush=True))\n"
                  "print('ready', flush=True)\n"
                  "time.sleep(60)\n")
    assert relay.stdout.readline().strip() == "ready"
    for sent, seen in ((signal.SIGUSR2, "usr2"), (signal.SIGHUP, "hup")):
        os.kill(relay.pid, sent)
        assert relay.stdout.readline().strip() == seen
    assert relay.poll() is None
    _, code, stderr = stop(relay)
    assert code == 128 + signal.SIGTERM, stderr

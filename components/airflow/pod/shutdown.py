"""What an Airflow container does on SIGTERM: a small relay between dumb-init and Airflow bounds it.

Without it, an Airflow 3.3.2 process can outlive SIGTERM until the kubelet's SIGKILL at the end of
the grace period. The scheduler's and dag-processor's SIGTERM handlers
(airflow/jobs/scheduler_job_runner.py SchedulerJobRunner._exit_gracefully,
airflow/dag_processing/manager.py DagFileProcessorManager._exit_gracefully, and before those are
installed airflow/utils/cli.py sigint_handler) stop the process by raising SystemExit from inside the
Python signal handler. CPython runs a handler between any two bytecodes of the main thread
(https://docs.python.org/3/library/signal.html#note-on-signal-handlers-and-exceptions); when that is
inside a callback whose exceptions the interpreter reports and drops (sys.unraisablehook: at-fork
hooks such as logging's `_releaseLock` after every fork of a DAG parser, weakref callbacks such as
SQLAlchemy's `_collection_gced`, `__del__`), the SystemExit is printed as "Exception ignored in ..."
and lost. The handler's cleanup already ran and the process keeps parsing or scheduling. Seen in
about one of nine soak runs (tests/integration/test_soak_dev_tier.py), and once in 25 SIGTERMs of a
lone dag-processor with no "Exception ignored" at all (the handler logged and finished, the loop went
on: something between the interrupted frame and the loop dropped the SystemExit silently); the same
pattern upstream: apache/airflow#15753. The handlers are idempotent, so a second SIGTERM ends such a
process cleanly.

The relay (RELAY_SCRIPT, run by the image's own entrypoint as `python -c ... airflow <command>`):
starts Airflow in a process group of its own and, on SIGTERM or SIGINT, sends it to that group, as
dumb-init's setsid mode did (https://github.com/Yelp/dumb-init#session-behavior); SIGHUP, SIGQUIT,
SIGUSR1 and SIGUSR2 (Airflow's debug dump) are passed on too, instead of killing the relay. If
Airflow still runs SECOND_SIGTERM_AFTER_SECONDS later it sends SIGTERM again, and SIGKILL to the group at
SIGKILL_AFTER_SECONDS, before the kubelet's own SIGKILL at GRACE_PERIOD_SECONDS. It exits with
Airflow's exit status. The handlers only send signals and re-arm a timer: nothing in them can be lost.
It costs one small Python process per container (about 11 MiB RSS, 5 MiB of it unshared).

The second SIGTERM waits past the rendered scheduler's normal exit: with the KubernetesExecutor it
takes about 20 s, because the provider waits up to a hard-coded 20 s for its pod watcher
(airflow/providers/cncf/kubernetes/executors/kubernetes_executor_utils.py
AirflowKubernetesScheduler.terminate; the bounded join: apache/airflow#52662), a forked process that
ignores SIGTERM: it inherits SchedulerJobRunner._exit_gracefully, which returns without exiting outside
the MainProcess.
"""

from __future__ import annotations

GRACE_PERIOD_SECONDS = 60  # terminationGracePeriodSeconds of every Airflow pod
SECOND_SIGTERM_AFTER_SECONDS = 30  # past the scheduler's ~20 s watcher wait, with room for a busy node
SIGKILL_AFTER_SECONDS = 40  # the relay's last resort, 20 s before the kubelet's

# No $(...) in here: the kubelet would expand $(NAME) in args.
RELAY_SCRIPT = """\
import os, signal, subprocess, sys
SECOND, KILL = {second}, {kill}
state = {{"child": None, "signal": None, "todo": [1], "alarms": 0}}

def log(message):
    print("sigterm-relay: " + message, file=sys.stderr, flush=True)

def send(signum):
    try:
        os.killpg(state["child"].pid, signum)
    except ProcessLookupError:
        pass

def begin():
    try:
        state["todo"].pop()  # once, whether the handler or the main code gets here first
    except IndexError:
        return
    send(state["signal"])
    signal.setitimer(signal.ITIMER_REAL, SECOND)

def on_stop(signum, frame):
    if state["signal"] is not None:
        if state["child"] is not None:
            send(signum)
        return
    state["signal"] = signum
    if state["child"] is not None:
        begin()

def on_alarm(signum, frame):
    state["alarms"] += 1
    if state["alarms"] == 1:
        log("still running %ss after the first signal: SIGTERM again" % SECOND)
        send(signal.SIGTERM)
        signal.setitimer(signal.ITIMER_REAL, KILL - SECOND)
    else:
        log("still running %ss after the first signal: SIGKILL" % KILL)
        send(signal.SIGKILL)

def on_other(signum, frame):
    if state["child"] is not None:
        send(signum)

signal.signal(signal.SIGALRM, on_alarm)
signal.signal(signal.SIGTERM, on_stop)
signal.signal(signal.SIGINT, on_stop)
for other in (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(other, on_other)
state["child"] = subprocess.Popen(sys.argv[1:], start_new_session=True)
if state["signal"] is not None:
    begin()
code = state["child"].wait()
sys.exit(code if code >= 0 else 128 - code)
"""


def relay_script(second_sigterm_after: float = SECOND_SIGTERM_AFTER_SECONDS,
                 sigkill_after: float = SIGKILL_AFTER_SECONDS) -> str:
    if not 0 < second_sigterm_after < sigkill_after:
        raise ValueError("the second SIGTERM must come after the first and before SIGKILL")
    return RELAY_SCRIPT.format(second=second_sigterm_after, kill=sigkill_after)


def relayed(argv: list[str]) -> list[str]:
    """Container args running `argv` under the relay; the image's entrypoint (dumb-init, then
    /entrypoint) stays in front and execs `python` after its usual checks."""
    return ["python", "-c", relay_script(), *argv]


def relayed_command(args: list[str]) -> list[str]:
    """The Airflow command line inside relayed args (the inverse of `relayed`)."""
    if list(args[:2]) != ["python", "-c"] or len(args) < 3 or args[2] != relay_script():
        raise ValueError(f"not relayed args: {list(args[:2])}")
    return list(args[3:])


def command_run(argv: list[str]) -> list[str]:
    """What a container's command line runs: the Airflow command when relayed, else the line itself."""
    try:
        return relayed_command(argv)
    except ValueError:
        return list(argv)

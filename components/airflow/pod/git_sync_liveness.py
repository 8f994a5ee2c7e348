"""How a stalled git-sync sidecar is detected, as pure functions of the settings it is rendered with.

Facts from git-sync v4.7.1 (https://github.com/kubernetes/git-sync/blob/v4.7.1/main.go, README.md):
- The `/` handler of `--http-bind` answers 503 until the first successful sync and 200 for the life of
  the process after it (main.go "This is a dumb liveliness check endpoint", README `--http-bind`), so an
  HTTP probe cannot see a sync that hangs or keeps failing later.
- Every sync runs under `context.WithTimeout(--sync-timeout)` (default 120s, README `--sync-timeout`);
  each git command is `exec.CommandContext` (pkg/cmd/cmd.go), so a hung fetch is killed and the attempt
  counts as a failure (the timeout was added for a fetch stuck for 2 h: kubernetes/git-sync#115).
- After a failed attempt git-sync sleeps `--period` and retries; it exits 1 once the consecutive
  failures reach `--max-failures` (`maxFails >= 0 && failCount >= maxFails`, so 0 exits on the first
  failure and a negative value retries forever); a success resets the count. The kubelet then restarts
  the container (restartCount, CrashLoopBackOff: the signal operators alert on).
- `--touch-file` and `--exechook-command` fire only when the synced commit changed (or on the first
  sync), not on every successful sync, so the age of a touch file cannot tell a stall from a quiet
  repository; an exec probe on it would kill a healthy git-sync. Not used.

So the stall is detected by git-sync itself: worst case from the stall to the exit is
`max(maxFailures, 1) × (period + syncTimeout)` (each failed attempt waits one period, then hangs until
the timeout). One gap closed here: git-sync v4.7.1 sets no `exec.Cmd.WaitDelay`, so Go's Wait also
waits for the output pipes, which a git helper (git-remote-https, ssh) that outlives the killed `git`
keeps open until its TCP keepalive gives up (about 2 h on Linux defaults). `transport_stall_env` makes
the helpers give up on a silent remote by themselves, well inside the sync timeout.
"""

from __future__ import annotations

import math
from typing import Optional

# Rendered explicitly as GITSYNC_SYNC_TIMEOUT (git-sync's default): a depth-1 fetch of a DAG repository
# takes seconds, 120 s leaves room for a slow remote without hiding a hang for long.
GIT_SYNC_TIMEOUT_SECONDS = 120
# The longest a stalled sync may go unnoticed before git-sync exits and the kubelet restarts it.
MAX_STALL_DETECTION_SECONDS = 3600
PROBE_PERIOD_SECONDS = 30


# A remote silent this long aborts the transfer on its own. git's upload-pack sends a keepalive every 5 s
# while it builds a pack (git-config uploadpack.keepAlive), so 60 s of silence is a dead connection.
TRANSPORT_SILENCE_SECONDS = 60
SSH_ALIVE_INTERVAL_SECONDS = 15


def transport_stall_env(credentials_kind: str) -> list[tuple[str, str]]:
    """Env for git-sync that makes git's helpers abort a stalled transfer: curl's low-speed limit
    (git-config http.lowSpeedLimit / GIT_HTTP_LOW_SPEED_LIMIT and _TIME) for HTTPS, and ssh keepalives
    for SSH (git-sync v4.7.1 SetupGitSSH keeps a GIT_SSH_COMMAND it finds and appends its own options)."""
    env = [("GIT_HTTP_LOW_SPEED_LIMIT", "1"), ("GIT_HTTP_LOW_SPEED_TIME", str(TRANSPORT_SILENCE_SECONDS))]
    if credentials_kind == "ssh":
        count = TRANSPORT_SILENCE_SECONDS // SSH_ALIVE_INTERVAL_SECONDS
        env.append(("GIT_SSH_COMMAND",
                    f"ssh -o ServerAliveInterval={SSH_ALIVE_INTERVAL_SECONDS} -o ServerAliveCountMax={count}"))
    return env


def failed_attempts_before_exit(max_failures: int) -> Optional[int]:
    """Consecutive failed syncs after which git-sync v4.7.1 exits; None when it retries forever."""
    return None if max_failures < 0 else max(max_failures, 1)


def stall_detection_seconds(period_seconds: int, max_failures: int,
                            sync_timeout_seconds: int = GIT_SYNC_TIMEOUT_SECONDS) -> Optional[int]:
    """Worst case from a stall (every attempt hangs) to git-sync's exit; None when it never exits."""
    attempts = failed_attempts_before_exit(max_failures)
    return None if attempts is None else attempts * (period_seconds + sync_timeout_seconds)


def startup_failure_threshold(period_seconds: int, max_failures: int) -> int:
    """Until the first sync `/` answers 503; the startup probe lets git-sync reach its own, logged exit
    first and is the kubelet's backstop one probe period after that bound."""
    bound = stall_detection_seconds(period_seconds, max_failures) or MAX_STALL_DETECTION_SECONDS
    return math.ceil(bound / PROBE_PERIOD_SECONDS) + 1


def stall_problem(period_seconds: int, max_failures: int) -> Optional[tuple[str, str, str]]:
    """(key, why, fix value) when these settings let a stalled git-sync run unnoticed, else None."""
    bound = stall_detection_seconds(period_seconds, max_failures)
    if bound is not None and bound <= MAX_STALL_DETECTION_SECONDS:
        return None
    fitting_failures = MAX_STALL_DETECTION_SECONDS // (period_seconds + GIT_SYNC_TIMEOUT_SECONDS)
    why = (f"a stalled git-sync must exit within {MAX_STALL_DETECTION_SECONDS}s so the kubelet restarts it; it "
           f"exits after max(gitSyncMaxFailures, 1) x (gitSyncPeriod + {GIT_SYNC_TIMEOUT_SECONDS}s sync timeout) = "
           + ("never (-1 retries forever)" if bound is None else f"{bound}s"))
    if bound is None or fitting_failures >= 1:
        return "gitSyncMaxFailures", why, str(min(max(fitting_failures, 1), 10))
    fitting_period = MAX_STALL_DETECTION_SECONDS // failed_attempts_before_exit(max_failures) - GIT_SYNC_TIMEOUT_SECONDS
    return "gitSyncPeriod", why, f"{max(fitting_period, 5)}s"

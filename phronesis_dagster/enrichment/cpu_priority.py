"""A bulk batch's run process yields the CPU to a rep's interactive one on a shared machine.

On a laptop every run is a process on the same few cores (Dagster's DefaultRunLauncher): three
bulk batch runs of a 2,000-prospect job kept two cores busy, and a rep's single "Enrich" run,
queued first by the run queue, still had to share the cores with them - its process start and
its enrichment took two to three times as long as alone (BENCHMARKS.md, 2026-12-02). A bulk run that
raises its own niceness lets the scheduler hand the cores to the interactive run first; the bulk
runs lose nothing when nobody clicks (niceness only matters when there is contention), and their
provider calls mostly wait on the network and the shared rate limits, not on the CPU.

Set by `PHRONESIS_BULK_RUN_NICENESS` (`phronesis dev` sets 10 for the daemon it starts; unset
or 0: nothing changes). Production needs none of it: each run is a Kubernetes pod with a CPU
request of its own, and inside that pod's cgroup the run's threads only compete with each
other, so a niceness there changes nothing. It is also never wanted for in-process runs (the
demo, the tests): it would slow the calling process, not a run process of its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

BULK_RUN_NICENESS_ENV = "PHRONESIS_BULK_RUN_NICENESS"
MAX_NICENESS = 19  # the lowest priority Linux and macOS have


def bulk_run_niceness(env: Mapping[str, str] | None = None) -> int:
    """The niceness a bulk run process takes (0 = unchanged), from
    `PHRONESIS_BULK_RUN_NICENESS`; a value that is not an integer in 0..19 is an error naming
    the variable."""
    raw = (os.environ if env is None else env).get(BULK_RUN_NICENESS_ENV, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_NICENESS:
        raise ValueError(f"{BULK_RUN_NICENESS_ENV} must be an integer from 0 to 19, got {raw!r}")
    return value


def lower_process_priority(niceness: int) -> int:
    """Give every thread of this process at least `niceness`; returns how many threads were
    lowered. On Linux each thread has a niceness of its own (threads started later inherit their
    creator's), so the threads Dagster already runs are lowered one by one through
    /proc/self/task; elsewhere the call applies to the whole process. Never raises a priority:
    an unprivileged process could not take it back."""
    if niceness <= 0:
        return 0
    tasks = Path("/proc/self/task")
    ids = [int(t) for t in os.listdir(tasks)] if tasks.is_dir() else [0]
    lowered = 0
    for tid in ids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
                lowered += 1
        except (ProcessLookupError, PermissionError):  # a thread that just ended
            continue
    return lowered

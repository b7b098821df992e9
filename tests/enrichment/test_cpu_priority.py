"""A bulk batch's run process yields the CPU: every thread of the process, the ones already
running included, takes the configured niceness; an interactive run (or no setting) keeps its
priority."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from phronesis_dagster.enrichment.cpu_priority import BULK_RUN_NICENESS_ENV, bulk_run_niceness

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/<pid>/task")

# A fresh process (lowering the test process itself would slow the rest of the suite): a thread
# started before the call, then the call, then a thread started after it; prints the niceness of
# every thread of the process as the kernel reports it.
CHILD = textwrap.dedent(
    """
    import os, threading, time
    from pathlib import Path
    from phronesis_dagster.enrichment.cpu_priority import lower_process_priority

    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
    lowered = lower_process_priority(int(os.environ["NICE"]))
    threading.Thread(target=stop.wait, daemon=True).start()
    time.sleep(0.1)
    nice = []
    for task in Path("/proc/self/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        nice.append(int(fields[16]))  # field 19 of stat: nice
    print(lowered, sorted(nice))
    """
)


def niceness_of_threads(nice: int) -> tuple[int, list[int]]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={"NICE": str(nice), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(" ", 1)
    return int(out[0]), [int(x) for x in out[1].strip("[]\n").split(",")]


# The child starts at the test process's own niceness (0 unless the suite itself runs niced).
BASE = os.getpriority(os.PRIO_PROCESS, 0)


@pytest.mark.skipif(BASE >= 10, reason="the test process already runs at niceness 10 or more")
def test_every_thread_of_the_process_takes_the_niceness() -> None:
    lowered, nice = niceness_of_threads(10)
    assert lowered == 2  # the main thread and the one already running
    assert nice == [10, 10, 10]  # the thread started afterwards inherited it


def test_zero_leaves_the_process_alone() -> None:
    assert niceness_of_threads(0) == (0, [BASE] * 3)


def test_the_setting_is_read_from_the_environment_and_checked() -> None:
    assert bulk_run_niceness({}) == 0
    assert bulk_run_niceness({BULK_RUN_NICENESS_ENV: " 10 "}) == 10
    for bad in ("-5", "20", "ten"):
        with pytest.raises(ValueError, match=BULK_RUN_NICENESS_ENV):
            bulk_run_niceness({BULK_RUN_NICENESS_ENV: bad})

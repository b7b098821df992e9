"""The warm run launcher: runs forked from a process that has Dagster and the code location
already imported (run_launcher.py, warm_worker.py)."""

from phronesis_dagster.launcher.run_launcher import RUN_WORKER_TAG, WarmRunLauncher

__all__ = ["RUN_WORKER_TAG", "WarmRunLauncher"]

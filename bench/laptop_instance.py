"""Where should the laptop's Dagster instance keep runs and events: Dagster's default local storage
(files under DAGSTER_HOME) or the embedded PostgreSQL server the app database already runs on?

    .venv/bin/python bench/laptop_instance.py [--repeats 3]

Measures, for each storage (`PHRONESIS_LAPTOP_DAGSTER_STORAGE=local|postgres`), on a fresh data
folder each time and exactly as a user runs them:
  - `phronesis demo`: wall time of the whole command (embedded server start, migrations, seed,
    every run, server stop);
  - `phronesis dev`: time from the command's start until the webserver answers GraphQL with the
    code location loaded, then the time from Ctrl-C (SIGINT to its process group, as a terminal
    sends it) until the command has exited and the embedded server is stopped.
Before that, the embedded server alone: first start (initdb), stop, start on the kept data, stop.
Prints medians; the last line is the demo's postgres/local wall-time ratio.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from phronesis_dagster.db import embedded  # noqa: E402

PHRONESIS = str(Path(sys.executable).with_name("phronesis"))
STORAGES = ("local", "postgres")
READY_QUERY = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
DEV_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command_env(data_dir: Path, storage: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PHRONESIS_DATABASE_URL", "DAGSTER_HOME") and not k.endswith("_API_KEY")
    }
    env["PHRONESIS_DATA_DIR"] = str(data_dir)
    env["PHRONESIS_LAPTOP_DAGSTER_STORAGE"] = storage
    return env


def server_running(data_dir: Path) -> bool:
    pid_file = data_dir / embedded.SERVER_DIR / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ProcessLookupError, ValueError):
        return False
    return True


def time_demo(data_dir: Path, storage: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [PHRONESIS, "demo"],
        cwd=REPO_ROOT,
        env=command_env(data_dir, storage),
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(
            f"demo failed ({storage}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    if server_running(data_dir):
        raise SystemExit(f"demo left the embedded server running ({storage})")
    return took


def time_dev(data_dir: Path, storage: str) -> tuple[float, float]:
    port = free_port()
    log = data_dir / f"dev-{storage}.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PHRONESIS, "dev", "--port", str(port), "--emulator-port", "0"],
            cwd=REPO_ROOT,
            env=command_env(data_dir, storage),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = started + DEV_TIMEOUT_S
        while True:
            if process.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"dev did not come up ({storage}):\n{log.read_text()[-3000:]}")
            try:
                body = httpx.post(
                    f"http://127.0.0.1:{port}/graphql", json={"query": READY_QUERY}, timeout=5
                ).json()
                if body["data"]["repositoriesOrError"].get("nodes"):
                    break
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            time.sleep(0.25)
        ready = time.perf_counter() - started
        interrupted = time.perf_counter()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=90)
        stopped = time.perf_counter() - interrupted
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if server_running(data_dir):
        raise SystemExit(f"dev left the embedded server running ({storage})")
    return ready, stopped


def time_server(root: Path) -> tuple[float, float, float]:
    data_dir = root / "server"
    started = time.perf_counter()
    server = embedded.start(data_dir)
    first = time.perf_counter() - started
    started = time.perf_counter()
    embedded.stop(server)
    stop = time.perf_counter() - started
    started = time.perf_counter()
    server = embedded.start(data_dir)
    again = time.perf_counter() - started
    embedded.stop(server)
    return first, stop, again


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    med = statistics.median
    # Started in the background (nohup ... &), this process and its children would ignore SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    with tempfile.TemporaryDirectory(prefix="bench-laptop-") as tmp:
        servers = [time_server(Path(tmp) / f"s{i}") for i in range(args.repeats)]
    print(
        f"embedded server: first start (initdb) {med(s[0] for s in servers):.2f}s, "
        f"stop {med(s[1] for s in servers):.2f}s, start on kept data "
        f"{med(s[2] for s in servers):.2f}s (medians of {args.repeats})"
    )

    demo: dict[str, list[float]] = {s: [] for s in STORAGES}
    ready: dict[str, list[float]] = {s: [] for s in STORAGES}
    stop: dict[str, list[float]] = {s: [] for s in STORAGES}
    for i in range(args.repeats):
        # Alternate the order so a slow spell of the shared machine hits both.
        for storage in STORAGES if i % 2 == 0 else reversed(STORAGES):
            with tempfile.TemporaryDirectory(prefix=f"bench-laptop-{storage}-") as tmp:
                data_dir = Path(tmp) / "data"
                demo[storage].append(time_demo(data_dir, storage))
                up, down = time_dev(data_dir, storage)
                ready[storage].append(up)
                stop[storage].append(down)
            print(
                f"  run {i + 1} {storage:<8} demo {demo[storage][-1]:.1f}s, dev ready "
                f"{up:.1f}s, dev stop {down:.1f}s",
                flush=True,
            )
    for storage in STORAGES:
        print(
            f"{storage:<8} demo {med(demo[storage]):.1f}s  dev ready {med(ready[storage]):.1f}s  "
            f"dev stop after Ctrl-C {med(stop[storage]):.1f}s  (medians of {args.repeats})"
        )
    print(
        f"dev ready postgres/local: {med(ready['postgres']) / med(ready['local']):.2f}x\n"
        f"demo wall time postgres/local: {med(demo['postgres']) / med(demo['local']):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Take a headless-Chromium screenshot of the Dagster UI's global asset lineage for the README.

    .venv/bin/python scripts/screenshot_lineage.py          # own webserver -> docs/img/lineage.png
    .venv/bin/python scripts/screenshot_lineage.py --url http://127.0.0.1:3000    # a running UI

Without --url it starts `dagster-webserver -w workspace.yaml` from the repo root on a free port,
with a throwaway DAGSTER_HOME and a freshly migrated app database on an embedded PostgreSQL server
in a temporary folder (so nothing of yours is touched), waits until the code location is loaded,
screenshots `/asset-groups` (the "Global asset lineage" page) and stops the webserver and the
server. Needs Debian's `chromium`:

    apt-get update && apt-get install -y chromium
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "img" / "lineage.png"
LINEAGE_PATH = "/asset-groups"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "Chromium is not installed. On Debian/Ubuntu: "
    "`sudo apt-get update && sudo apt-get install -y chromium` "
    "(or pass --chromium /path/to/chrome)."
)
STARTUP_TIMEOUT_S = 120
CHROMIUM_TIMEOUT_S = 120
REPOSITORIES_QUERY = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
GROUPS_QUERY = "{ assetNodes { groupName } }"


def find_chromium(explicit: str | None) -> str | None:
    """The Chromium binary: --chromium, else the first of the usual names on PATH."""
    if explicit:
        return explicit if shutil.which(explicit) or Path(explicit).is_file() else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_code_location(url: str, process: subprocess.Popen, log: Path) -> None:
    """Block until the webserver answers GraphQL with at least one loaded repository."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"dagster-webserver exited early:\n{log.read_text()[-3000:]}")
        try:
            response = httpx.post(f"{url}/graphql", json={"query": REPOSITORIES_QUERY}, timeout=5)
            nodes = response.json()["data"]["repositoriesOrError"].get("nodes")
            if nodes:
                return
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"webserver not ready after {STARTUP_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def lineage_url(base_url: str) -> str:
    """The global lineage page with every asset group expanded (the UI collapses them when there
    are several; `expanded` takes the UI's group ids, `global@global:<group>`)."""
    response = httpx.post(f"{base_url}/graphql", json={"query": GROUPS_QUERY}, timeout=30)
    response.raise_for_status()
    groups = sorted({node["groupName"] for node in response.json()["data"]["assetNodes"]})
    if not groups:
        return base_url + LINEAGE_PATH
    expanded = ",".join(f"global@global:{group}" for group in groups)
    return f"{base_url}{LINEAGE_PATH}?{urlencode({'expanded': expanded})}"


def start_webserver(
    workdir: Path, workspace: Path, app_db_url: str
) -> tuple[subprocess.Popen, str, Path]:
    """dagster-webserver on a free port with a throwaway instance, on the app database at
    `app_db_url` (migrated here)."""
    from phronesis_dagster.db import migrate

    home = workdir / "dagster_home"
    home.mkdir()
    # nux off: no "Join the Dagster community" dialog over the graph.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    migrate.upgrade(app_db_url)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PHRONESIS_DATABASE_URL": app_db_url,
        "PHRONESIS_DATA_DIR": str(workdir / "data"),
        # The code location binds provider resources at load; emulator mode needs no keys and
        # nothing is run, so the address is never called.
        "PHRONESIS_PROVIDER_MODE": "emulator",
        "PHRONESIS_EMULATOR_URL": "http://127.0.0.1:9",
    }
    port = free_port()
    log = workdir / "webserver.log"
    webserver = Path(sys.executable).parent / "dagster-webserver"
    command = [str(webserver), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}", log


def stop(process: subprocess.Popen) -> None:
    """Stop a process and everything it started (code servers, run workers): one process group."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


def screenshot(
    chromium: str, url: str, output: Path, width: int, height: int, budget_ms: int, workdir: Path
) -> None:
    """Headless Chromium renders `url` for `budget_ms` of virtual time and writes a PNG."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={workdir / 'chromium-profile'}",
        f"--window-size={width},{height}",
        f"--virtual-time-budget={budget_ms}",
        f"--screenshot={output}",
        url,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, start_new_session=True
    )
    if result.returncode != 0 or not output.exists() or output.stat().st_size == 0:
        raise SystemExit(
            f"chromium failed (exit {result.returncode}), no screenshot written:\n"
            f"{result.stderr[-3000:]}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="base URL of a running Dagster UI (default: start one)")
    parser.add_argument(
        "--workspace", type=Path, default=REPO_ROOT / "workspace.yaml", help="without --url"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="PNG to write")
    parser.add_argument("--chromium", help="Chromium/Chrome binary (default: found on PATH)")
    # The page zooms the graph to fit the width and draws nodes with their full names only at
    # 60% scale or more (below, names are cut to 18 characters): 1900 px is wide enough for
    # that, and 3300 px tall enough for the four groups one above the other.
    parser.add_argument("--width", type=int, default=1900)
    parser.add_argument("--height", type=int, default=3300)
    parser.add_argument(
        "--budget-ms", type=int, default=15000, help="virtual time the page gets to render"
    )
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if chromium is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="phronesis-screenshot-") as tmp:
        workdir = Path(tmp)
        process = server = None
        try:
            if args.url:
                base_url = args.url.rstrip("/")
            else:
                from phronesis_dagster.db import embedded

                try:
                    server = embedded.start(workdir / "data")
                except embedded.EmbeddedUnavailable as exc:
                    raise SystemExit(str(exc)) from None
                app_db_url = server.ensure_database("phronesis")
                process, base_url, log = start_webserver(workdir, args.workspace, app_db_url)
                wait_for_code_location(base_url, process, log)
            page = lineage_url(base_url)
            screenshot(
                chromium, page, args.output, args.width, args.height, args.budget_ms, workdir
            )
        finally:
            if process is not None:
                stop(process)
            if server is not None:
                from phronesis_dagster.db.engine import engine_for

                engine_for(app_db_url).dispose()
                embedded.stop(server)
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes) from {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Dagster UI, live: `dagster-webserver` and `dagster-daemon` on the project's workspace.yaml
against a temporary instance. Through the webserver's GraphQL API (what the UI itself calls) the
asset graph, partitions, schedules and sensors match the Definitions, and a materialization
launched through it succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import dagster as dg
import httpx
import pytest

from phronesis_dagster.db import migrate
from scripts.screenshot_lineage import free_port, stop
from tests.conftest import fresh_database

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = REPO_ROOT / "workspace.yaml"
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 90
RUN_TIMEOUT_S = 120
LAUNCH_ASSET = dg.AssetKey("usage_metrics_daily")
# The code location binds the provider resources at load time; emulator mode with an address
# nothing listens on loads them without keys. No provider is called: the launched asset only
# needs the app DB, and the enrichment sensor finds no requests in the empty app DB.
PROVIDER_ENV = {
    "PHRONESIS_PROVIDER_MODE": "emulator",
    "PHRONESIS_EMULATOR_URL": "http://127.0.0.1:9",
}

# Local instance: Dagster's own storage in the temp DAGSTER_HOME; the queue is drained every second.
INSTANCE_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
"""

REPOSITORIES_QUERY = """
query {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } } }
    ... on PythonError { message stack }
  }
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message stack } }
      }
    }
  }
}
"""

ASSET_NODES_QUERY = """
query {
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    isPartitioned
    isMaterializable
    partitionKeys
    jobNames
  }
}
"""

SCHEDULES_SENSORS_QUERY = """
query ($selector: RepositorySelector!) {
  schedulesOrError(repositorySelector: $selector) {
    __typename
    ... on Schedules { results { name cronSchedule } }
    ... on PythonError { message }
  }
  sensorsOrError(repositorySelector: $selector) {
    __typename
    ... on Sensors { results { name } }
    ... on PythonError { message }
  }
}
"""

LAUNCH_RUN_MUTATION = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

RUN_QUERY = """
query ($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status assetMaterializations { assetKey { path } partition } }
    ... on PythonError { message }
  }
}
"""


@dataclass(frozen=True)
class LiveDagster:
    url: str
    home: Path
    repository: dict[str, str]  # RepositorySelector: repositoryName, repositoryLocationName

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def _tail(path: Path, lines: int = 40) -> str:
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
    )


def _wait_for_repository(url: str, logs: list[Path]) -> dict[str, str]:
    """Wait until the webserver answers and has loaded the code location; its RepositorySelector."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/server_info", timeout=2).raise_for_status()
            data = LiveDagster(url, Path(), {}).graphql(REPOSITORIES_QUERY)
        except (httpx.HTTPError, AssertionError) as exc:
            last = repr(exc)
            time.sleep(0.5)
            continue
        entries = data["workspaceOrError"].get("locationEntries", [])
        for entry in entries:
            load_error = entry.get("locationOrLoadError") or {}
            if load_error.get("__typename") == "PythonError":
                pytest.fail(f"code location {entry['name']} failed to load: {load_error}")
        repos = data["repositoriesOrError"]
        if repos["__typename"] == "RepositoryConnection" and repos["nodes"]:
            node = repos["nodes"][0]
            return {
                "repositoryName": node["name"],
                "repositoryLocationName": node["location"]["name"],
            }
        last = str(data)
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{_tail(log)}" for log in logs)
    pytest.fail(f"webserver not ready after {STARTUP_TIMEOUT_S}s ({last})\n{tails}")


@pytest.fixture(scope="module")
def app_db_url() -> Iterator[str]:
    """A migrated app database of this module's own on the machine's PostgreSQL (the conftest's
    per-test databases are function-scoped; the live servers live for the whole module)."""
    with fresh_database("t_live") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="module")
def live_dagster(
    tmp_path_factory: pytest.TempPathFactory, app_db_url: str
) -> Iterator[LiveDagster]:
    """dagster-webserver + dagster-daemon from the repo root on a free port, a temporary
    DAGSTER_HOME and a migrated PostgreSQL app database; both process groups are killed after."""
    root = tmp_path_factory.mktemp("live_dagster")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)

    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PHRONESIS_DATABASE_URL": app_db_url,
        "PHRONESIS_DATA_DIR": str(root / "data"),
        **PROVIDER_ENV,
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs = [root / "webserver.log", root / "daemon.log"]
    commands = [
        [str(BIN / "dagster-webserver"), "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(port)],
        [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
    ]
    processes: list[subprocess.Popen] = []
    try:
        for command, log in zip(commands, logs, strict=True):
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        repository = _wait_for_repository(url, logs)
        yield LiveDagster(url=url, home=home, repository=repository)
    finally:
        for process in processes:
            stop(process)


def _definitions() -> dg.Definitions:
    with mock.patch.dict(os.environ, PROVIDER_ENV):
        from phronesis_dagster.definitions import defs

    return defs


def test_asset_graph_in_the_ui_matches_the_definitions(live_dagster: LiveDagster) -> None:
    asset_graph = _definitions().resolve_asset_graph()
    expected_nodes = {key.to_user_string() for key in asset_graph.get_all_asset_keys()}
    expected_edges = {
        (parent.to_user_string(), key.to_user_string())
        for key in asset_graph.get_all_asset_keys()
        for parent in asset_graph.get(key).parent_entity_keys
        if isinstance(parent, dg.AssetKey)
    }

    nodes = live_dagster.graphql(ASSET_NODES_QUERY)["assetNodes"]
    shown_nodes = {dg.AssetKey(node["assetKey"]["path"]).to_user_string() for node in nodes}
    shown_edges = {
        (
            dg.AssetKey(dep["path"]).to_user_string(),
            dg.AssetKey(node["assetKey"]["path"]).to_user_string(),
        )
        for node in nodes
        for dep in node["dependencyKeys"]
    }
    assert shown_nodes == expected_nodes
    assert shown_edges == expected_edges


def test_partitions_schedules_and_sensors_in_the_ui(live_dagster: LiveDagster) -> None:
    defs = _definitions()
    asset_graph = defs.resolve_asset_graph()
    nodes = {
        dg.AssetKey(node["assetKey"]["path"]): node
        for node in live_dagster.graphql(ASSET_NODES_QUERY)["assetNodes"]
    }
    # The webserver's instance is fresh, so dynamic partitions have no keys yet on either side.
    with dg.DagsterInstance.ephemeral() as empty_instance:
        for key in asset_graph.get_all_asset_keys():
            partitions_def = asset_graph.get(key).partitions_def
            node = nodes[key]
            assert node["isPartitioned"] == (partitions_def is not None), key
            if partitions_def is None:
                continue
            expected = partitions_def.get_partition_keys(dynamic_partitions_store=empty_instance)
            shown = node["partitionKeys"]
            # A daily partition may open between the two reads at midnight UTC.
            assert shown[: len(expected)] == expected or expected[: len(shown)] == shown, key
            assert abs(len(shown) - len(expected)) <= 1, key

    data = live_dagster.graphql(SCHEDULES_SENSORS_QUERY, {"selector": live_dagster.repository})
    assert data["schedulesOrError"]["__typename"] == "Schedules", data["schedulesOrError"]
    assert data["sensorsOrError"]["__typename"] == "Sensors", data["sensorsOrError"]
    shown_schedules = {s["name"]: s["cronSchedule"] for s in data["schedulesOrError"]["results"]}
    shown_sensors = {s["name"] for s in data["sensorsOrError"]["results"]}
    repository = defs.get_repository_def()
    assert shown_schedules == {s.name: s.cron_schedule for s in repository.schedule_defs}
    assert shown_sensors == {s.name for s in repository.sensor_defs}


def test_materialization_launched_through_the_ui_succeeds(live_dagster: LiveDagster) -> None:
    nodes = {
        dg.AssetKey(node["assetKey"]["path"]): node
        for node in live_dagster.graphql(ASSET_NODES_QUERY)["assetNodes"]
    }
    node = nodes.get(LAUNCH_ASSET)
    if node is None or not node["isMaterializable"]:
        pytest.skip(
            f"{LAUNCH_ASSET.to_user_string()} is not in the code location yet: it is the one asset "
            "that materializes with only the app DB (no provider), so nothing is launched"
        )
    partition = node["partitionKeys"][0] if node["isPartitioned"] else None
    job_name = sorted(node["jobNames"], key=lambda name: not name.startswith("__ASSET_JOB"))[0]
    tags = [{"key": "dagster/partition", "value": partition}] if partition else []
    params = {
        "selector": {
            **live_dagster.repository,
            "jobName": job_name,
            "assetSelection": [{"path": LAUNCH_ASSET.path}],
        },
        "executionMetadata": {"tags": tags},
    }
    launched = live_dagster.graphql(LAUNCH_RUN_MUTATION, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + RUN_TIMEOUT_S
    run: dict = {}
    while time.monotonic() < deadline:
        run = live_dagster.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        if run.get("status") in {"SUCCESS", "FAILURE", "CANCELED"}:
            break
        time.sleep(1)
    assert run.get("status") == "SUCCESS", run
    assert {
        (tuple(m["assetKey"]["path"]), m["partition"]) for m in run["assetMaterializations"]
    } == {(tuple(LAUNCH_ASSET.path), partition)}

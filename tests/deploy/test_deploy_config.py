"""The Kubernetes deployment (deploy/) agrees with the production instance (dagster.yaml), the code
location and the image: a drift between them would only show up in a cluster."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from unittest import mock

import pytest
import yaml
from alembic.script import ScriptDirectory

from phronesis_dagster.db import migrate

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "deploy" / "helm" / "phronesis-dagster"
# Importing the definitions binds the provider resources; emulator mode loads them without keys.
PROVIDER_ENV = {
    "PHRONESIS_PROVIDER_MODE": "emulator",
    "PHRONESIS_EMULATOR_URL": "http://127.0.0.1:9",
}
PROVIDER_SECRET_KEYS = {
    "PHRONESIS_DATABASE_URL",
    "REDIS_URL",
    "CONTACTOUT_API_KEY",
    "EXA_API_KEY",
    "APOLLO_API_KEY",
    "ANTHROPIC_API_KEY",
    "SEC_USER_AGENT",
}


def _instance_yaml() -> dict:
    return yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())


def _helm_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def test_helm_instance_settings_match_dagster_yaml() -> None:
    instance = _instance_yaml()
    chart = _helm_values()["dagster"]

    runs = chart["concurrency"]["runs"]
    assert chart["concurrency"]["enabled"] is True
    assert runs["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert runs["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    pools = chart["concurrency"]["pools"]
    assert {
        "default_limit": pools["defaultLimit"],
        "granularity": pools["granularity"],
        "op_granularity_run_buffer": pools["opGranularityRunBuffer"],
    } == instance["concurrency"]["pools"]

    daemon = chart["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == instance["run_coordinator"]["class"]
    # Limits live only in `concurrency`: any queuedRunCoordinator value makes the chart render
    # run_coordinator limits too, and Dagster rejects an instance with both.
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert not any(queued.values()), queued
    assert daemon["runRetries"] == {
        "enabled": instance["run_retries"]["enabled"],
        "maxRetries": instance["run_retries"]["max_retries"],
        "retryOnAssetOrOpFailure": instance["run_retries"]["retry_on_asset_or_op_failure"],
    }
    monitoring = instance["run_monitoring"]
    assert daemon["runMonitoring"]["enabled"] == monitoring["enabled"]
    assert daemon["runMonitoring"]["startTimeoutSeconds"] == monitoring["start_timeout_seconds"]
    assert daemon["runMonitoring"]["pollIntervalSeconds"] == monitoring["poll_interval_seconds"]
    # Only the K8sRunLauncher can resume a run in place; the single-host launcher must keep 0.
    assert chart["runLauncher"]["type"] == "K8sRunLauncher"
    assert daemon["runMonitoring"]["maxResumeRunAttempts"] > 0
    assert monitoring["max_resume_run_attempts"] == 0

    assert chart["telemetry"]["enabled"] is instance["telemetry"]["enabled"] is False
    sensors = instance["sensors"]
    assert daemon["sensors"] == {
        "useThreads": sensors["use_threads"],
        "numWorkers": sensors["num_workers"],
        "numSubmitWorkers": sensors["num_submit_workers"],
    }
    scheme = instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert chart["postgresql"]["postgresqlScheme"] == scheme


def test_sensor_daemon_settings_are_the_same_on_the_laptop_and_in_production() -> None:
    from phronesis_dagster.demo import LOCAL_INSTANCE_YAML

    laptop = yaml.safe_load(LOCAL_INSTANCE_YAML)["sensors"]
    assert laptop == _instance_yaml()["sensors"]
    # Ticks and a tick's run submissions both on thread pools (deploy/dagster.yaml says why).
    assert laptop["use_threads"] is True and laptop["num_submit_workers"] > 1


def test_helm_release_serves_this_code_location_with_its_secrets() -> None:
    values = _helm_values()
    chart = values["dagster"]
    assert chart["postgresql"]["enabled"] is False  # external, managed Dagster database

    (deployment,) = chart["dagster-user-deployments"]["deployments"]
    module_name = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["dagster"][
        "module_name"
    ]
    assert deployment["codeServerArgs"] == ["-m", module_name]
    assert deployment["image"]["repository"] == values["phronesis"]["image"]["repository"]

    secret_name = values["phronesis"]["secretName"]
    assert {"name": secret_name} in deployment["envSecrets"]
    assert {"name": secret_name} in chart["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]

    secrets = list(yaml.safe_load_all((REPO_ROOT / "deploy/k8s/secrets.example.yaml").read_text()))
    by_name = {doc["metadata"]["name"]: doc["stringData"] for doc in secrets}
    assert PROVIDER_SECRET_KEYS <= set(by_name[secret_name])
    assert "postgresql-password" in by_name[chart["global"]["postgresqlSecretName"]]


def test_dockerfile_copies_files_that_exist_and_installs_the_package() -> None:
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    assert re.search(r'pip install "\.\[k8s\]"', dockerfile)
    sources = [
        src
        for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M)
        for src in [part for part in line.split() if not part.startswith("--")][:-1]
    ]
    assert sources, "no COPY from the build context"
    ignore = (REPO_ROOT / "deploy" / "Dockerfile.dockerignore").read_text()
    for src in sources:
        assert (REPO_ROOT / src).exists(), f"Dockerfile copies missing {src}"
        assert f"!{src}" in ignore, f"{src} is excluded from the build context"


@pytest.mark.postgres
def test_migrate_hook_command_migrates_an_empty_app_database(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    template = (CHART / "templates" / "migrate-job.yaml").read_text()
    command = ast.literal_eval(re.search(r"command: (\[.*\])", template).group(1))
    url = empty_postgres_url

    result = subprocess.run(
        [sys.executable, *command[1:]],
        cwd=tmp_path,
        env={**os.environ, "PHRONESIS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    scripts = ScriptDirectory.from_config(migrate.alembic_config(url))
    assert migrate.current(url) == scripts.get_current_head()


def test_run_tag_limits_match_tags_the_project_puts_on_its_runs() -> None:
    """A limit on a `phronesis/...` tag nobody sets would silently limit nothing."""
    with mock.patch.dict(os.environ, PROVIDER_ENV):
        from phronesis_dagster.definitions import defs

    job_tags = [job.tags for job in defs.get_repository_def().get_all_jobs()]
    # The request sensor adds the lane tags to the runs it requests (bulk and interactive).
    from phronesis_dagster.enrichment.requests import BULK, INTERACTIVE, Batch
    from phronesis_dagster.sensors.enrichment import batch_run_request

    job_tags += [
        batch_run_request(Batch(key="batch-1", request_ids=(1,), prospect_ids=(), lane=lane)).tags
        for lane in (BULK, INTERACTIVE)
    ]
    limits = _instance_yaml()["concurrency"]["runs"]["tag_concurrency_limits"]
    own = [limit for limit in limits if limit["key"].startswith("phronesis/")]
    assert own, "no run limit on the project's own tags"
    for limit in own:
        assert any(tags.get(limit["key"]) == limit["value"] for tags in job_tags), limit


def test_killed_runs_are_retried_from_failure_on_the_laptop_and_in_production(tmp_path) -> None:
    """Both instances retry a run whose process died, and the enrichment job re-executes from
    failure with at least as many retries as the instance default; the laptop instance loads
    as a real Dagster instance (a setting Dagster rejects would only show in `make dev`)."""
    import dagster as dg

    from phronesis_dagster.demo import LOCAL_INSTANCE_YAML
    from phronesis_dagster.jobs import enrichment_batch_job

    (tmp_path / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)
    with dg.DagsterInstance.from_config(str(tmp_path)) as local:
        assert local.run_retries_enabled and local.run_retries_max_retries >= 1
        assert local.run_retries_retry_on_asset_or_op_failure is False
        assert local.run_monitoring_enabled
        # The warm run launcher watches its runs' pids but cannot resume a run in place.
        assert local.run_launcher.supports_check_run_worker_health
        assert local.run_monitoring_max_resume_run_attempts == 0
        local_retries = local.run_retries_max_retries
    production = _instance_yaml()["run_retries"]
    assert production["enabled"] is True and production["max_retries"] >= 1

    tags = enrichment_batch_job.tags
    assert tags["dagster/retry_strategy"] == "FROM_FAILURE"
    assert int(tags["dagster/max_retries"]) >= max(local_retries, production["max_retries"])

    env = _helm_values()["dagster"]["dagster-user-deployments"]["deployments"][0]["env"]
    silence = {e["name"]: e["value"] for e in env}["PHRONESIS_RECOVERY_SILENCE_SECONDS"]
    # The backstop must wait longer than run monitoring takes to see a dead pod.
    monitoring = _helm_values()["dagster"]["dagsterDaemon"]["runMonitoring"]
    assert float(silence) > monitoring["pollIntervalSeconds"]

"""The sensor tests' Dagster instance: a throwaway one per test."""

from __future__ import annotations

import dagster as dg
import pytest


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst

"""`python -m phronesis_dagster.emulator`: the published limits unless `--rate-limit` overrides."""

from __future__ import annotations

import pytest

from phronesis_dagster.emulator.__main__ import build_config, parse_args
from phronesis_dagster.emulator.config import PUBLISHED_RATE_LIMITS


def test_without_rate_limit_the_published_limits_hold():
    config = build_config(parse_args([]))
    assert config.rate_limit_per_second == PUBLISHED_RATE_LIMITS
    assert config.rate_limit_per_second["exa"] == 10


def test_rate_limit_overrides_only_what_it_names():
    config = build_config(parse_args(["--rate-limit", "exa=100,apollo.search=5,edgar=none"]))
    limits = config.rate_limit_per_second
    assert (limits["exa"], limits["apollo.search"], limits["edgar"]) == (100, 5, None)
    assert limits["apollo.enrichment"] == PUBLISHED_RATE_LIMITS["apollo.enrichment"]
    assert limits["anthropic"] == PUBLISHED_RATE_LIMITS["anthropic"]


def test_provider_wide_override_replaces_its_endpoint_groups():
    limits = build_config(parse_args(["--rate-limit", "apollo=50"])).rate_limit_per_second
    assert limits["apollo"] == 50
    assert not any(k.startswith("apollo.") for k in limits)


@pytest.mark.parametrize("bad", ["nosuch=1", "apollo.nosuch=1", "exa=fast"])
def test_a_typo_is_refused(bad):
    with pytest.raises(SystemExit):
        parse_args(["--rate-limit", bad])

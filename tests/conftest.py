"""Shared test settings: hypothesis profiles and fixtures."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# "ci" keeps the property suites to a bounded time on a shared 2-core machine;
# HYPOTHESIS_PROFILE=thorough runs many more examples locally.
settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)

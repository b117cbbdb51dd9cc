"""Hypothesis profiles for the fuzz targets: ``ci`` (bounded, run by ``make test``) and
``nightly`` (long, run by ``make fuzz``)."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "nightly", max_examples=50_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile("ci")

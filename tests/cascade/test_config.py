"""Builder arguments: what a backend is deployed with, when the builder leaves it out, and what config may say."""

from __future__ import annotations

import time
from dataclasses import FrozenInstanceError

import pytest
from pydantic import ValidationError

from cascade.config import (
    BackendArgs,
    CircuitArgs,
    ClusterInfo,
    DeploymentOptions,
    GatewaySettings,
    JobArgs,
    Limits,
    Route,
    StorageArgs,
)


class _NeedsWeights(BackendArgs):
    def missing(self) -> str | None:
        return "no weights configured"


def _on(gpus: float) -> DeploymentOptions:
    return DeploymentOptions(ray_actor_options={"num_gpus": gpus, "num_cpus": 1})


def test_deployment_options_pass_only_what_is_set_and_one_cpu_by_default() -> None:
    assert DeploymentOptions().as_options() == {"ray_actor_options": {"num_cpus": 1}}
    options = DeploymentOptions(num_replicas=2, max_queued_requests=0, health_check_period_s=5.0)
    assert options.as_options() == {
        "num_replicas": 2,
        "max_queued_requests": 0,  # zero is a setting, not "unset"
        "ray_actor_options": {"num_cpus": 1},
        "health_check_period_s": 5.0,
    }


@pytest.mark.parametrize(
    ("actor_options", "gpus"), [({}, 0.0), ({"num_gpus": None}, 0.0), ({"num_gpus": 0.5}, 0.5), ({"num_gpus": 2}, 2.0)]
)
def test_num_gpus_reads_the_actor_options(actor_options: dict, gpus: float) -> None:
    value = DeploymentOptions(ray_actor_options=actor_options).num_gpus
    assert value == gpus and isinstance(value, float)


@pytest.mark.parametrize(
    ("needs", "cluster", "reason"),
    [
        (1, 1, None),  # a 1-GPU backend on a 1-GPU cluster is deployed
        (0.5, 1, None),
        (1, 0.5, "needs 1 GPU, the cluster has 0.5"),
        (1, 0, "needs 1 GPU, the cluster has 0"),
        (2, 1, "needs 2 GPU, the cluster has 1"),
        (0, 0, None),
    ],
)
def test_auto_leaves_out_a_backend_needing_more_gpus_than_the_cluster_has(
    needs: float, cluster: float, reason: str | None
) -> None:
    args = BackendArgs(deployment=_on(needs))
    assert args.unavailable_reason(ClusterInfo(gpus=cluster, cpus=8)) == reason


def test_auto_then_asks_the_backend_what_it_misses() -> None:
    assert _NeedsWeights().unavailable_reason(ClusterInfo(gpus=0, cpus=8)) == "no weights configured"
    # The GPU shortfall is the first thing to fix, so it is the reason given.
    gpu = _NeedsWeights(deployment=_on(1))
    assert gpu.unavailable_reason(ClusterInfo(gpus=0, cpus=8)) == "needs 1 GPU, the cluster has 0"


def test_enabled_true_and_false_override_every_check() -> None:
    nothing = ClusterInfo(gpus=0, cpus=1)
    assert _NeedsWeights(enabled=True, deployment=_on(4)).unavailable_reason(nothing) is None
    assert BackendArgs(enabled=False).unavailable_reason(ClusterInfo(gpus=8, cpus=64)) == "disabled in config"


def test_backend_defaults() -> None:
    args = BackendArgs()
    assert (args.enabled, args.timeout_s, args.cold_start) == ("auto", 30.0, "wait")
    assert args.deployment == DeploymentOptions() and args.missing() is None


@pytest.mark.parametrize(
    "bad",
    [
        {"timeout_s": 0},
        {"timeout_s": -1},
        {"cold_start": "maybe"},
        {"enabled": "sometimes"},
        {"timout_s": 5},  # a typo is refused, not ignored
        {"deployment": {"num_replica": 2}},
    ],
)
def test_backend_config_mistakes_are_refused_when_loaded(bad: dict) -> None:
    with pytest.raises(ValidationError):
        BackendArgs.model_validate(bad)


def test_the_smallest_valid_backend_settings() -> None:
    assert BackendArgs(timeout_s=0.001).timeout_s == 0.001


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        BackendArgs().timeout_s = 5  # type: ignore[misc]


def test_limit_defaults_are_the_documented_ones() -> None:
    # README, "Request": prompt 1..4000 characters, sides 64..2048, at most 4.2 MP, default 1024x1024.
    limits = Limits()
    assert (limits.max_prompt_chars, limits.min_side, limits.max_side) == (4000, 64, 2048)
    assert (limits.max_pixels, limits.default_size, limits.max_body_bytes) == (4_200_000, "1024x1024", 262_144)


@pytest.mark.parametrize(
    ("field", "lowest"),
    [("max_prompt_chars", 1), ("min_side", 1), ("max_side", 1), ("max_pixels", 1), ("max_body_bytes", 1024)],
)
def test_limits_have_a_floor(field: str, lowest: int) -> None:
    assert getattr(Limits(**{field: lowest}), field) == lowest
    with pytest.raises(ValidationError):
        Limits(**{field: lowest - 1})


def test_circuit_defaults_and_floors() -> None:
    # README: opens after `failure_threshold` consecutive failures, probes after `cooldown_s`.
    assert (CircuitArgs().failure_threshold, CircuitArgs().cooldown_s) == (3, 30.0)
    assert CircuitArgs(failure_threshold=1, cooldown_s=0.001).failure_threshold == 1
    for bad in ({"failure_threshold": 0}, {"cooldown_s": 0}):
        with pytest.raises(ValidationError):
            CircuitArgs.model_validate(bad)


def test_routes_and_gateway_settings_default_to_waiting_local_backends_and_default_limits() -> None:
    route = Route(5.0)
    assert (route.timeout_s, route.cold_start, route.remote) == (5.0, "wait", False)
    settings = GatewaySettings(order=("svg",), routes={"svg": route}, request_timeout_s=10, storage_dir="/tmp/x")
    assert settings.limits == Limits() and settings.circuit == CircuitArgs()


def test_what_the_builder_hands_the_gateway_cannot_be_changed_behind_its_back() -> None:
    route = Route(5.0)
    settings = GatewaySettings(order=("svg",), routes={"svg": route}, request_timeout_s=10, storage_dir="/tmp/x")
    for frozen, name in ((route, "timeout_s"), (settings, "request_timeout_s"), (ClusterInfo(1, 8), "gpus")):
        with pytest.raises(FrozenInstanceError):
            setattr(frozen, name, 0)
    with pytest.raises(ValidationError):
        Limits().max_side = 4096  # type: ignore[misc]


def test_the_body_read_deadline_is_ten_seconds_and_must_be_positive() -> None:
    # README, "Errors": 408 when the body is not received within limits.body_read_timeout_s (10 s).
    assert Limits().body_read_timeout_s == 10.0 and Limits(body_read_timeout_s=0.001).body_read_timeout_s == 0.001
    with pytest.raises(ValidationError):
        Limits(body_read_timeout_s=0)


def test_replicas_per_node_is_passed_on_when_set_and_at_least_one() -> None:
    assert DeploymentOptions(max_replicas_per_node=1).as_options()["max_replicas_per_node"] == 1
    assert "max_replicas_per_node" not in DeploymentOptions().as_options()
    with pytest.raises(ValidationError):
        DeploymentOptions(max_replicas_per_node=0)


def test_storage_defaults_are_the_documented_ones() -> None:
    # README, "Storage and history": saves bounded by 10 s, a sweep every 600 s that spares names younger than
    # 900 s and first looks back a day; presigned URLs (not given in README) last an hour.
    storage = StorageArgs()
    assert (storage.url, storage.database_url, storage.timeout_s, storage.redirect) == (None, None, 10.0, False)
    assert (storage.presign_ttl_s, storage.sweep_interval_s) == (3600, 600)
    assert (storage.sweep_grace_s, storage.sweep_lookback_s) == (900, 86_400)


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ({"timeout_s": 0.001}, {"timeout_s": 0}),
        ({"timeout_s": 15, "sweep_grace_s": 60}, {"timeout_s": 300.5, "sweep_grace_s": 2000}),
        ({"timeout_s": 300, "sweep_grace_s": 1200}, {"timeout_s": 20, "sweep_grace_s": 79.9}),
        ({"presign_ttl_s": 60}, {"presign_ttl_s": 59}),
        ({"presign_ttl_s": 7 * 24 * 3600}, {"presign_ttl_s": 7 * 24 * 3600 + 1}),
        ({"sweep_interval_s": 0.001}, {"sweep_interval_s": 0}),
        ({"sweep_grace_s": 60, "timeout_s": 1}, {"sweep_grace_s": 59, "timeout_s": 1}),
        ({"sweep_lookback_s": 0}, {"sweep_lookback_s": -1}),
        ({"url": "s3://bucket/images"}, {"url": "ftp://host/images"}),
        ({"database_url": "sqlite:///tmp/index.db"}, {"database_url": "mysql://u@h/db"}),
    ],
)
def test_storage_settings_have_their_bounds(good: dict, bad: dict) -> None:
    # Kept as given, not only accepted: a validator that checks a URL must hand it back.
    assert StorageArgs.model_validate(good).model_dump(include=set(good)) == good
    with pytest.raises(ValidationError):
        StorageArgs.model_validate(bad)


def test_the_sweep_grace_must_outlast_four_saves() -> None:
    # A save still under way (object written, row not yet) must not look like an orphan to the sweep.
    assert StorageArgs(timeout_s=20, sweep_grace_s=80).sweep_grace_s == 80
    with pytest.raises(ValidationError, match="4 x timeout_s"):
        StorageArgs(timeout_s=20, sweep_grace_s=79)


def test_job_defaults_are_the_documented_ones_and_have_floors() -> None:
    # README, "Jobs": lost after 10 s without a heartbeat, kept an hour, keep-alive comments every 15 s.
    jobs = JobArgs()
    assert (jobs.lease_s, jobs.keep_s, jobs.max_jobs, jobs.max_events, jobs.events_heartbeat_s) == (
        10.0,
        3600.0,
        10_000,
        1000,
        15.0,
    )
    assert JobArgs(lease_s=0.001, keep_s=0.001, max_jobs=1, max_events=10, events_heartbeat_s=0.001).max_events == 10
    for bad in ({"lease_s": 0}, {"keep_s": 0}, {"max_jobs": 0}, {"max_events": 9}, {"events_heartbeat_s": 0}):
        with pytest.raises(ValidationError):
            JobArgs.model_validate(bad)


def test_gateway_settings_default_to_the_embedded_store_no_public_base_and_their_making_time() -> None:
    before = time.time()
    settings = GatewaySettings(order=("svg",), routes={"svg": Route(5.0)}, request_timeout_s=10, storage_dir="/x")
    assert settings.storage == StorageArgs() and settings.jobs == JobArgs() and settings.public_base_url is None
    assert before <= settings.built_at <= time.time()
    assert Route(5.0).domain is None and BackendArgs().route_domain() is None

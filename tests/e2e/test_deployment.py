"""The deployment files (Dockerfile, compose.yml): no container engine runs here, so this checks
what they rely on: the paths they copy and the commands they run exist in the repository, every
setting they set is one the gateway knows and accepts, the health check's command answers 0 from
a running gateway (and 1 from none), and two gateways set up as compose.yml sets them up share
one Redis: an account and a key added through one are served by the other."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.runtime.settings import SETTINGS, load_settings
from adapters.simulator import gateway_environment
from tests.e2e.conformance.conftest import Process, base_env, free_port, request, start
from tests.redis_server import fresh_redis, redis_url  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
KNOWN = {spec.env for spec in SETTINGS}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile line, continuations joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yml").read_text())
    return data


def gateways() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("build")}


def test_the_image_copies_paths_that_exist_and_installs_extras_the_project_has() -> None:
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    build_stage = True
    for instruction, args in dockerfile():
        if instruction == "FROM":
            assert "-slim" in args, "a slim base image"
            build_stage = "AS build" in args
        if instruction == "COPY" and not args.startswith("--from"):
            assert build_stage
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
        for extra_list in re.findall(r"\[([a-z,]+)\]", args if instruction == "RUN" else ""):
            assert set(extra_list.split(",")) <= extras, extra_list


def test_the_image_runs_as_a_non_root_user_and_sets_only_known_settings() -> None:
    instructions = dockerfile()
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    for instruction, args in instructions:
        if instruction == "ENV":
            for name in re.findall(r"([A-Z_][A-Z0-9_]*)=", args):
                assert name in KNOWN or name.startswith("PYTHON"), name
    settings = load_settings(
        environ={name: value for name, value in re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", " ".join(
            a for i, a in instructions if i == "ENV")) if name in KNOWN},
        cwd=ROOT / "tests",
    )
    assert settings.host == "0.0.0.0" and settings.state_url.startswith("sqlite:////data/")


def test_the_image_runs_commands_the_project_provides() -> None:
    instructions = dict(dockerfile())
    cmd = json.loads(instructions["CMD"])
    assert cmd == ["kiro2api", "serve"] and PYPROJECT["project"]["scripts"]["kiro2api"] == "adapters.cli:main"
    check = json.loads(instructions["HEALTHCHECK"].split("CMD", 1)[1].strip())
    assert check[:2] == ["python", "-m"] and (ROOT / (check[2].replace(".", "/") + ".py")).is_file()


def test_compose_runs_two_gateways_on_one_redis_with_known_settings_and_file_secrets() -> None:
    data = compose()
    services = gateways()
    assert len(services) == 2 and "redis" in data["services"]
    for name, service in services.items():
        assert service["build"] == "." and (ROOT / "Dockerfile").is_file()
        env: Mapping[str, str] = service["environment"]
        assert set(env) <= KNOWN, set(env) - KNOWN
        assert env["KIRO_STATE"].startswith("redis://redis:")
        assert env["SIMULATOR_WITHOUT_ACCOUNTS"] == "false"
        secrets = set(service["secrets"])
        for variable, path in env.items():
            if variable.endswith("_FILE"):
                assert path.startswith("/run/secrets/") and path.rsplit("/", 1)[1] in secrets, variable
                assert variable.removesuffix("_FILE") in KNOWN
        assert not {"KIRO_CLIENT_TOKEN", "KIRO_ADMIN_TOKEN", "KIRO_AUTH_TOKEN"} & set(env), "secrets only as files"
        assert secrets <= set(data["secrets"])
    ports = [p for s in services.values() for p in s["ports"]]
    assert len(set(ports)) == 2


def _compose_environment(tmp_path: Path, redis: str, upstream: str, port: int) -> dict[str, str]:
    """A gateway's environment as compose.yml sets it, with its secrets as files under
    ``tmp_path``, the Redis of this test and the simulator as Kiro."""
    service = next(iter(gateways().values()))
    env = base_env()
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    values = {
        "kiro_client_token": "deploy-client-token-0123456789",
        "kiro_admin_token": "deploy-admin-token-0123456789",
        "kiro_auth_token": gateway_environment(upstream)["KIRO_AUTH_TOKEN"],
    }
    for name, value in values.items():
        (secrets_dir / name).write_text(value + "\n")
    for variable, value in service["environment"].items():
        if variable.endswith("_FILE"):
            value = str(secrets_dir / value.rsplit("/", 1)[1])
        env[variable] = str(value)
    env["KIRO_STATE"] = redis
    env["HOST"] = "127.0.0.1"
    env["PORT"] = str(port)
    env.update({k: v for k, v in gateway_environment(upstream).items() if k != "KIRO_AUTH_TOKEN"})
    return env


@pytest.fixture
def simulator() -> Iterator[Process]:
    port = free_port()
    process = start("simulator", [sys.executable, "-m", "adapters.simulator", "--port", str(port), "--pace-ms", "0",
                                  "--log-level", "WARNING"], port, base_env())
    yield process
    process.stop()


def test_the_health_check_command_answers_from_a_running_gateway(tmp_path: Path, simulator: Process, fresh_redis: str) -> None:
    port = free_port()
    env = _compose_environment(tmp_path, fresh_redis, simulator.url, port)
    check = json.loads(dict(dockerfile())["HEALTHCHECK"].split("CMD", 1)[1].strip())
    command = [sys.executable if part == "python" else part for part in check]
    nobody = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert nobody.returncode == 1 and "unreachable" in nobody.stderr
    gateway = start("gateway", [sys.executable, "-m", "adapters.cli", "serve"], port, env)
    try:
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        status, _, body = request(port, "GET", "/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
    finally:
        gateway.stop()


def _admin(port: int, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
    status, _, data = request(port, method, path, json.dumps(body).encode() if body is not None else None,
                              {"authorization": "Bearer deploy-admin-token-0123456789",
                               "content-type": "application/json"})
    return status, json.loads(data) if data else None


def test_two_replicas_as_compose_sets_them_up_share_accounts_and_keys(
    tmp_path: Path, simulator: Process, fresh_redis: str
) -> None:
    ports = free_port(), free_port()
    replicas = [start(f"replica-{i}", [sys.executable, "-m", "adapters.cli", "serve"], port,
                      _compose_environment(tmp_path, fresh_redis, simulator.url, port))
                for i, port in enumerate(ports)]
    try:
        status, added = _admin(ports[0], "POST", "/admin/api/accounts",
                               {"auth": "Social", "refreshToken": "aorAAAAAG-second-simulator-account-xyz",
                                "description": "added on replica 0"})
        assert status == 201, added
        deadline = time.monotonic() + 5
        while True:
            _, listed = _admin(ports[1], "GET", "/admin/api/accounts")
            if any(a["id"] == added["id"] for a in listed["accounts"]) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [a["description"] for a in listed["accounts"]] == ["simulator demo", "added on replica 0"]
        # The demo account off everywhere: replica 1 serves with the account replica 0 added.
        demo = listed["accounts"][0]["id"]
        assert _admin(ports[0], "POST", f"/admin/api/accounts/{demo}/disable")[0] == 200
        time.sleep(1.5)
        status, _, body = request(ports[1], "POST", "/v1/messages", json.dumps(
            {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}
        ).encode(), {"x-api-key": "deploy-client-token-0123456789", "content-type": "application/json"})
        assert status == 200, body
        _, audit = _admin(ports[1], "GET", "/admin/api/audit")
        assert [e["action"] for e in audit["entries"]][:2] == ["accounts.disable", "accounts.add"]
    finally:
        for replica in replicas:
            replica.stop()

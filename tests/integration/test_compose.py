"""docker-compose.yml is valid and describes the fleet: Redis (AOF, noeviction, password), scalable workers, Flower, demo."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def compose_command() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed")


SECRETS = {
    "REDIS_PASSWORD": "r3dis-test-secret",
    "REDIS_WORKER_PASSWORD": "w0rker-test-secret",
    "REDIS_PRODUCER_PASSWORD": "pr0ducer-test-secret",
    "FLOWER_PASSWORD": "fl0wer-test-secret",
}


def config(secrets: dict[str, str] = SECRETS) -> str:
    result = subprocess.run(
        [*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True, text=True, cwd=ROOT,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", **secrets},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def services_of(text: str) -> dict[str, list[str]]:
    """Each service's block of lines in ``compose config`` output (services at the second level)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_services = False
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_services, current = line.strip() == "services:", None
        elif in_services and indent == 2 and line.rstrip().endswith(":"):
            current = blocks.setdefault(line.strip()[:-1], [])
        elif current is not None:
            current.append(line.strip())
    return blocks


def command_of(block: list[str]) -> list[str]:
    """The block's ``command:`` list, unquoted."""
    start = block.index("command:") + 1
    items = []
    for line in block[start:]:
        if not line.startswith("- "):
            break
        items.append(line[2:].strip("'\""))
    return items


def test_docker_compose_config_is_valid_and_has_every_service() -> None:
    services = services_of(config())
    redis = "\n".join(services["redis"])
    for needle in ("appendonly", "noeviction", "requirepass"):
        assert needle in redis, needle
    assert command_of(services["worker"])[:2] == ["wasmjob", "worker"]
    assert command_of(services["flower"])[:2] == ["wasmjob", "flower"]
    assert "5555" in command_of(services["flower"])
    services = subprocess.run(
        [*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "--profile", "demo", "config", "--services"],
        capture_output=True, text=True, cwd=ROOT, env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", **SECRETS},
    ).stdout.split()
    assert {"redis", "worker", "flower", "demo"} <= set(services)


def test_the_worker_service_can_scale() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    worker = text.split("\n  worker:\n", 1)[1].split("\n  flower:\n", 1)[0]
    assert "container_name" not in worker and "ports" not in worker


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_chosen_password(missing: str) -> None:
    secrets = {k: v for k, v in SECRETS.items() if k != missing}
    result = subprocess.run(
        [*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True, text=True, cwd=ROOT, env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", **secrets},
    )
    assert result.returncode != 0 and missing in result.stderr


def test_no_known_password_is_in_the_compose_file_and_flower_is_not_published_beyond_loopback() -> None:
    text = config()
    assert "wasmjob@redis" not in text and ":-wasmjob}" not in (ROOT / "docker-compose.yml").read_text()
    assert SECRETS["REDIS_PASSWORD"] in text and f"admin:{SECRETS['FLOWER_PASSWORD']}" in text
    flower = "\n".join(services_of(text)["flower"])
    assert "127.0.0.1" in flower and "maxmemory" in "\n".join(services_of(text)["redis"])


def test_redis_has_the_acl_users_wasmjob_acl_prints_and_each_service_logs_in_as_its_role() -> None:
    from wasmjob.broker_config import Settings
    from wasmjob.broker_config.acl import fleet_users, server_args

    services = services_of(config())
    expected = server_args(fleet_users(
        Settings(), producer_password=SECRETS["REDIS_PRODUCER_PASSWORD"], worker_password=SECRETS["REDIS_WORKER_PASSWORD"]
    ))
    redis = command_of(services["redis"])
    assert redis[redis.index("--user"):] == expected
    assert redis_url_of(services["worker"]) == f"redis://worker:{SECRETS['REDIS_WORKER_PASSWORD']}@redis:6379/0"
    assert redis_url_of(services["flower"]) == f"redis://producer:{SECRETS['REDIS_PRODUCER_PASSWORD']}@redis:6379/0"


def redis_url_of(block: list[str]) -> str:
    """The Redis URL a service's wasmjob settings make of its environment (password given apart)."""
    from wasmjob.broker_config import Settings

    env = dict(line.split(": ", 1) for line in block if line.startswith("WASMJOB_REDIS_"))
    return Settings.from_env({k: v.strip("'\"") for k, v in env.items()}).redis_url


def test_any_password_works_and_workers_flower_and_metrics_have_healthchecks() -> None:
    import redis

    odd = {**SECRETS, "REDIS_WORKER_PASSWORD": "p@ss:w/rd", "REDIS_PRODUCER_PASSWORD": "a b%c#d"}
    result = subprocess.run(
        [*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True, text=True, cwd=ROOT, env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", **odd},
    )
    assert result.returncode == 0, result.stderr
    services = services_of(result.stdout)
    for name, user in (("worker", "worker"), ("flower", "producer")):
        parsed = redis.connection.parse_url(redis_url_of(services[name]))
        assert (parsed["username"], parsed["password"]) == (user, odd[f"REDIS_{user.upper()}_PASSWORD"])
    worker = "\n".join(services["worker"])
    assert "healthcheck:" in worker and "celery -A wasmjob.fleet.app inspect ping" in worker
    assert "/healthcheck" in "\n".join(services["flower"])
    assert "wasmjob metrics --serve" in " ".join(command_of(services["metrics"])).replace("- ", "")


def test_the_rabbitmq_profile_adds_the_broker_and_workers_take_its_url() -> None:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", **SECRETS,
           "RABBITMQ_PASSWORD": "r4bbit-test-secret", "WASMJOB_BROKER_URL": "amqp://wasmjob:r4bbit-test-secret@rabbitmq:5672/wasmjob"}
    base = [*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "--profile", "rabbitmq"]
    listed = subprocess.run([*base, "config", "--services"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert "rabbitmq" in listed.stdout.split(), listed.stderr
    text = subprocess.run([*base, "config"], capture_output=True, text=True, cwd=ROOT, env=env).stdout
    worker = "\n".join(services_of(text)["worker"])
    assert "amqp://wasmjob:r4bbit-test-secret@rabbitmq:5672/wasmjob" in worker
    rabbit = services_of(text)["rabbitmq"]
    assert "profiles:" in rabbit and "- rabbitmq" in rabbit, "RabbitMQ must only start with its profile"

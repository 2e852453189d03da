"""Which broker a fleet uses, and how: Redis (the default), RabbitMQ, or Redis behind Sentinel."""

from __future__ import annotations

import pytest

from wasmjob.broker_config import Settings, celery_config
from wasmjob.broker_config import redis_transport
from wasmjob.errors import ConfigError

pytestmark = pytest.mark.unit


def test_the_job_store_redis_is_the_broker_unless_one_is_named() -> None:
    conf = celery_config(Settings.from_env({}))
    assert conf.broker_url == "redis://127.0.0.1:6379/0"
    assert conf.broker_transport == redis_transport.REDIS
    assert conf.task_queue_max_priority is None
    assert "visibility_timeout" in conf.broker_transport_options


def test_rabbitmq_brokers_keep_redis_as_the_job_store_and_declare_priority_queues() -> None:
    settings = Settings.from_env({"WASMJOB_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/jobs"})
    conf = celery_config(settings)
    assert (conf.broker_url, conf.broker_transport) == ("amqp://guest:guest@127.0.0.1:5672/jobs", None)
    assert conf.result_backend == settings.redis_url
    assert conf.task_queue_max_priority == 9
    assert "visibility_timeout" not in conf.broker_transport_options
    assert not settings.broker_is_redis


def test_sentinel_urls_name_the_master_for_broker_and_backend() -> None:
    url = "sentinel://127.0.0.1:26379/0;sentinel://127.0.0.1:26380/0"
    conf = celery_config(Settings.from_env({"WASMJOB_REDIS_URL": url, "WASMJOB_SENTINEL_MASTER": "jobs"}))
    assert conf.broker_transport == redis_transport.SENTINEL
    assert conf.broker_transport_options["master_name"] == "jobs"
    assert conf.result_backend_transport_options["master_name"] == "jobs"


@pytest.mark.parametrize(
    "env",
    [
        {"WASMJOB_BROKER_URL": "kafka://somewhere"},
        {"WASMJOB_REDIS_URL": "amqp://guest:guest@127.0.0.1//"},  # the job store must be Redis
        {"WASMJOB_CHECKPOINT_REPLICAS": "-1"},
    ],
)
def test_brokers_and_stores_that_cannot_work_are_refused(env) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)

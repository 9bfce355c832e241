from __future__ import annotations

import uuid

import pytest

from hub.core.tasks import ping_task

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_task_round_trips_through_real_broker_and_worker(celery_worker_process):
    token = uuid.uuid4().hex
    result = ping_task.delay(token)
    assert result.get(timeout=20) == {"token": token, "database": "ok"}

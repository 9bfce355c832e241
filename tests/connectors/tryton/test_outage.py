"""The `tryton` connector when the peer is down: every capability fails as transient (the hub retries),
and works again once Tryton is back. Stops the shared peer, so it runs after the other peer tests
(file order) and always starts it again."""

from __future__ import annotations

import pytest

from connectors.errors import TransientError
from tests.connectors.tryton.peer import drain, peer, polled_ids, sale_confirmed

pytestmark = pytest.mark.peer


def test_a_stopped_peer_is_a_transient_error_and_a_restarted_one_works(connector, ctx, tryton):
    cursor = drain(connector, ctx)
    sale = sale_confirmed(tryton)
    peer("stop")
    try:
        with pytest.raises(TransientError, match="unreachable"):
            connector.poll(cursor, ctx)
        with pytest.raises(TransientError, match="unreachable"):
            connector.operate("invoice.post", {"sale_id": sale["id"]}, ctx)
        with pytest.raises(TransientError, match="unreachable"):
            connector.lookup("invoice.post", {"sale_id": sale["id"]}, ctx)
    finally:
        peer("start")

    assert polled_ids(connector.poll(cursor, ctx)) == [sale["id"]]
    assert connector.operate("invoice.post", {"sale_id": sale["id"]}, ctx).data["state"] == "posted"

"""Django's Redis cache, reusing one Redis client object per connection pool.

Django's backend builds a new ``redis.Redis`` object on every cache call; on the inbound path (rate
limit, wake-up flag) that was about an eighth of the web process's CPU per request. The pools were
already shared; now the thin client objects on top of them are too.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _ReusingClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class ReusingRedisCache(RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = _ReusingClient


def redis_client(cache) -> object | None:
    """The raw Redis client behind a Django cache, or None when the cache is not Redis."""
    holder = getattr(cache, "_cache", None)
    if holder is None or not hasattr(holder, "get_client"):
        return None
    return holder.get_client(write=True)

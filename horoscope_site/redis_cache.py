"""Django's Redis cache backend, with one redis-py client per connection pool instead of one per call.

Django builds a new redis.Redis for every cache operation, and redis-py (5 and later) fills a
table of about 170 response callbacks in each: on a web worker that reads a session and one page
entry per request, building the clients cost more CPU than the round trips. A redis.Redis is
safe to share between threads (each command takes a connection from the pool), and the pool
notices a fork, so one client per pool serves the whole process.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class SharedClientRedisCache(RedisCache):
    """settings.CACHES' backend when REDIS_URL is set: Django's RedisCache in every other way."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient

"""The container's entrypoint: finish the environment ECS gives, then become the command.

- DATABASE_URL: ECS passes the generated database secret's username and password as separate
  variables (DATABASE_USER, DATABASE_PASSWORD) next to DATABASE_HOST/PORT/NAME; the app reads one URL.
- REDIS_URL: likewise REDIS_HOST/REDIS_PORT and the AUTH token secret (REDIS_AUTH_TOKEN) become
  rediss://:token@host:port/0 (ElastiCache with encryption in transit speaks TLS only).
- ALLOWED_HOSTS: the load balancer's health checks send the task's own IP address as the Host
  header; the task adds its IP (from the ECS task metadata endpoint) so /healthz answers them.

`python -m deploy.entrypoint CMD ARGS...` runs CMD in place of this process (PID stays the same, so
the stop signal reaches CMD).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Callable, MutableMapping
from urllib.parse import quote

METADATA_TIMEOUT_S = 2.0


class EntrypointError(Exception):
    pass


def database_url(env: MutableMapping[str, str]) -> str | None:
    """postgres://user:password@host:port/name from the DATABASE_* parts, or None when DATABASE_HOST is unset."""
    if not env.get("DATABASE_HOST"):
        return None
    missing = [name for name in ("DATABASE_USER", "DATABASE_PASSWORD", "DATABASE_NAME") if not env.get(name)]
    if missing:
        raise EntrypointError(f"DATABASE_HOST is set but not {', '.join(missing)}")
    user = quote(env["DATABASE_USER"], safe="")
    password = quote(env["DATABASE_PASSWORD"], safe="")
    port = env.get("DATABASE_PORT") or "5432"
    # RDS requires TLS for PostgreSQL 16 (rds.force_ssl); say so rather than rely on libpq's "prefer".
    return f"postgres://{user}:{password}@{env['DATABASE_HOST']}:{port}/{env['DATABASE_NAME']}?sslmode=require"


def redis_url(env: MutableMapping[str, str]) -> str | None:
    """rediss://:token@host:port/0 from the REDIS_* parts, or None when REDIS_HOST is unset."""
    if not env.get("REDIS_HOST"):
        return None
    if not env.get("REDIS_AUTH_TOKEN"):
        raise EntrypointError("REDIS_HOST is set but not REDIS_AUTH_TOKEN")
    token = quote(env["REDIS_AUTH_TOKEN"], safe="")
    port = env.get("REDIS_PORT") or "6379"
    # redis-py checks the certificate and the host name for rediss:// (ssl_cert_reqs=required).
    return f"rediss://:{token}@{env['REDIS_HOST']}:{port}/0"


def task_addresses(container_metadata: dict) -> list[str]:
    """The IPv4 addresses of this container's task network (awsvpc: the task's own address)."""
    return [
        address
        for network in container_metadata.get("Networks", [])
        for address in network.get("IPv4Addresses", [])
        if address
    ]


def fetch_metadata(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=METADATA_TIMEOUT_S) as response:  # noqa: S310 (ECS's own link-local URL)
        return json.load(response)


def prepare(env: MutableMapping[str, str], fetch: Callable[[str], dict] = fetch_metadata) -> None:
    """Complete `env` in place: DATABASE_URL, REDIS_URL and the task's address in ALLOWED_HOSTS."""
    for name, build in (("DATABASE_URL", database_url), ("REDIS_URL", redis_url)):
        if not env.get(name):
            url = build(env)
            if url:
                env[name] = url
    metadata_url = env.get("ECS_CONTAINER_METADATA_URI_V4")
    if metadata_url:
        try:
            addresses = task_addresses(fetch(metadata_url))
        except (OSError, ValueError) as exc:
            raise EntrypointError(f"cannot read the task's address from ECS metadata ({type(exc).__name__})") from None
        hosts = [host for host in env.get("ALLOWED_HOSTS", "").split(",") if host]
        env["ALLOWED_HOSTS"] = ",".join(hosts + [a for a in addresses if a not in hosts])


def main(argv: list[str]) -> int:
    if not argv:
        print("entrypoint: give the command to run, e.g. gunicorn horoscope_site.wsgi:application", file=sys.stderr)
        return 2
    try:
        prepare(os.environ)
    except EntrypointError as exc:
        print(f"entrypoint: {exc}", file=sys.stderr)
        return 2
    os.execvp(argv[0], argv)  # noqa: S606 (the image's own command, from the task definition)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

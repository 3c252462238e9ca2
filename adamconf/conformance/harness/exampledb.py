"""The example database a fuzzing campaign shares: a folder, or a Redis server.

``--database DIR`` is hypothesis's ``DirectoryBasedExampleDatabase`` (one machine, or
machines that share a folder); ``--database redis://HOST:PORT[/DB]`` is its
``RedisExampleDatabase`` (machines that share no disk; ``pip install 'adamconf[redis]'``).
Every engine of ``adamconf fuzz``, the pytest plugin's fuzz items and HypoFuzz's workers
open the same database from the same text, so a failing example one of them saves is
replayed first by the others.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["REDIS_INSTALL", "is_redis_url", "open_database", "shown", "default_database_path",
           "database_for"]

REDIS_INSTALL = "pip install 'adamconf[redis]'"
REDIS_SERVER_HINT = ("start one, e.g. 'redis-server --port 6379' (Debian: apt-get install "
                     "redis-server)")
_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis_url(where: str | Path) -> bool:
    return isinstance(where, str) and where.startswith(_SCHEMES)


def shown(where: str | Path) -> str:
    """The database as a log may show it: a Redis URL without its password."""
    return re.sub(r"//[^@/]*@", "//", str(where))


def open_database(where: str | Path):
    """The hypothesis example database at ``where`` (a folder, created if need be, or a
    Redis URL, whose server must answer); a UsageError names the fix."""
    from adamconf.conformance.errors import UsageError

    if is_redis_url(where):
        return _redis(str(where))
    path = Path(where)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--database {path}: cannot create it ({exc})") from None
    from hypothesis.database import DirectoryBasedExampleDatabase

    return DirectoryBasedExampleDatabase(str(path))


def default_database_path() -> Path:
    """Where hypothesis keeps failing examples between runs: the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "adamconf" / "hypothesis"


def database_for(where: str | Path | None, *, none: bool = False) -> tuple[Any, str | None, str]:
    """(the example database, the text that opens it in another process, how to show it):
    none where ``none`` (--no-database); ``where`` (--database: a folder or a Redis URL, which
    must work); else the user's cache folder where it can be made, else none."""
    from adamconf.conformance.errors import UsageError

    if none:
        return None, None, "none"
    if where is not None:
        return open_database(where), str(where), shown(where)
    path = default_database_path()
    try:
        return open_database(path), str(path), str(path)
    except UsageError:
        return None, None, f"none ({path} cannot be created)"


def _redis(url: str):
    from adamconf.conformance.errors import UsageError

    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise UsageError(f"--database {shown(url)}: a Redis database needs the redis package: "
                         f"{REDIS_INSTALL}") from None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.ping()
    except (redis.exceptions.RedisError, ValueError) as exc:
        raise UsageError(f"--database {shown(url)}: no Redis server answers there ({exc}); "
                         f"{REDIS_SERVER_HINT}") from None
    return RedisExampleDatabase(client)

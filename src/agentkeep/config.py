"""Where a store lives and how it behaves: target resolution and open() options."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InvalidInput

#: Environment variable naming the default home directory.
HOME_ENV = "AGENTKEEP_HOME"
#: Environment variable naming a default PostgreSQL URL (used when no target is given).
URL_ENV = "AGENTKEEP_URL"

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


class StoreConfig:
    """Options of an open store. Built by :func:`resolve`; read-only afterwards."""

    __slots__ = ("home", "url", "schema_prefix", "busy_timeout", "max_blob_size", "durability",
                 "pool_size")

    def __init__(self, home: Path | None, url: str | None, schema_prefix: str = "agentkeep",
                 busy_timeout: float = 10.0, max_blob_size: int = 64 * 1024 * 1024,
                 durability: str = "normal", pool_size: int = 10) -> None:
        values = dict(home=home, url=url, schema_prefix=schema_prefix,
                      busy_timeout=busy_timeout, max_blob_size=max_blob_size,
                      durability=durability, pool_size=pool_size)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("StoreConfig is read-only")

    def __repr__(self) -> str:
        return (f"StoreConfig({self.describe()!r}, schema_prefix={self.schema_prefix!r}, "
                f"busy_timeout={self.busy_timeout}, durability={self.durability!r})")

    @property
    def dialect(self) -> str:
        return "postgresql" if self.url else "sqlite"

    def describe(self) -> str:
        """The location as shown to users (the URL without its password)."""
        if self.url:
            return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", self.url)
        return str(self.home)


def default_home() -> Path:
    """``$AGENTKEEP_HOME``, else the platform's user data directory."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("agentkeep", appauthor=False))


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(_POSTGRES_SCHEMES)


def resolve(
    target: str | os.PathLike[str] | None = None,
    *,
    schema_prefix: str = "agentkeep",
    busy_timeout: float = 10.0,
    max_blob_size: int = 64 * 1024 * 1024,
    durability: str = "normal",
    pool_size: int = 10,
    **unknown: object,
) -> StoreConfig:
    """Turn the argument of :func:`agentkeep.open` into a :class:`StoreConfig`.

    Raises:
        InvalidInput: an option is unknown or out of range, or the target is not a path
            or URL.
    """
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "is not an option of agentkeep.open (it "
                                               "takes schema_prefix, busy_timeout, "
                                               "max_blob_size, durability, pool_size)")
    field = "target"
    if target is None:
        from_environment = os.environ.get(URL_ENV)
        target = from_environment or default_home()
        if from_environment:
            field = f"${URL_ENV}"  # name where to fix it
    if not isinstance(target, (str, os.PathLike)):
        raise InvalidInput("target", f"expected a directory path or a postgresql:// URL, "
                                     f"got {type(target).__name__}")
    if not isinstance(schema_prefix, str) or not _IDENTIFIER.fullmatch(schema_prefix):
        raise InvalidInput("schema_prefix", "must be a lowercase SQL identifier "
                                            "(letters, digits, _; at most 41 characters)")
    if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)) \
            or not 0 <= busy_timeout <= 3600:
        raise InvalidInput("busy_timeout", "must be a number of seconds between 0 and 3600")
    if isinstance(max_blob_size, bool) or not isinstance(max_blob_size, int) \
            or max_blob_size <= 0:
        raise InvalidInput("max_blob_size", "must be a positive number of bytes")
    if durability not in ("normal", "full"):
        raise InvalidInput("durability", "must be 'normal' or 'full'")
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or not 1 <= pool_size <= 200:
        raise InvalidInput("pool_size", "must be an integer between 1 and 200")
    options = dict(schema_prefix=schema_prefix, busy_timeout=float(busy_timeout),
                   max_blob_size=max_blob_size, durability=durability, pool_size=pool_size)
    if is_postgres_url(target):
        return StoreConfig(home=None, url=str(target), **options)
    text = os.fspath(target)
    if isinstance(text, bytes) or not text.strip() or "\x00" in text:
        raise InvalidInput(field, "must be a non-empty directory path or a postgresql:// URL")
    if "://" in text:
        raise InvalidInput(field, f"unsupported URL scheme in {text.split('://')[0]!r}; "
                                  "use a directory path or a postgresql:// URL")
    return StoreConfig(home=Path(text).expanduser(), url=None, **options)

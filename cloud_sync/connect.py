"""How to reach the central database: DSN, password override and TLS, for asyncpg."""

from __future__ import annotations

import ssl
from typing import Any

from sqlalchemy.engine import make_url

from edge.settings import CentralSettings


def sqlalchemy_url(dsn: str, password: str | None = None) -> str:
    """The DSN as an SQLAlchemy asyncpg URL, with the password replaced if one is given."""
    url = make_url(dsn).set(drivername="postgresql+asyncpg")
    if password is not None:
        url = url.set(password=password)
    return url.render_as_string(hide_password=False)


def asyncpg_dsn(settings: CentralSettings) -> str:
    """The plain postgresql:// DSN for asyncpg, with the password from settings applied."""
    if settings.dsn is None:
        raise ValueError("central.dsn is not set")
    url = make_url(settings.dsn.get_secret_value())
    if settings.password is not None:
        url = url.set(password=settings.password.get_secret_value())
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def ssl_argument(settings: CentralSettings) -> Any:
    """asyncpg's `ssl` argument for `central.sslmode` (libpq semantics)."""
    mode = settings.sslmode
    if mode in ("disable", "prefer", "require") and settings.sslcert is None:
        return mode
    context = ssl.create_default_context(
        cafile=str(settings.sslrootcert) if settings.sslrootcert else None)
    if mode in ("prefer", "require"):
        # libpq's require encrypts without verifying the server.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode == "verify-ca":
        context.check_hostname = False
    if settings.sslcert is not None and settings.sslkey is not None:
        context.load_cert_chain(str(settings.sslcert), str(settings.sslkey))
    return context


def connect_args(settings: CentralSettings) -> dict[str, Any]:
    return {"ssl": ssl_argument(settings), "timeout": settings.connect_timeout_s}

"""The one place that decides whether a central-database error may pass by retrying."""

from __future__ import annotations

import asyncpg

_RETRIABLE_SQLSTATE_CLASSES = ("08", "40", "53", "57")  # connection, rollback, resources, operator
_CHAIN_LIMIT = 8


def is_retriable(error: BaseException, connection_lost: bool = False) -> bool:
    """True for outages and transient conflicts; False for errors an operator must fix.

    The syncer retries both (it never drops buffered data), but a permanent error is logged
    as one that needs a person (wrong password, schema not migrated, ...). A database that
    goes away is an outage however the client library words it: when the connection is
    closed, or when the error was raised while handling a connection-level one (asyncpg's
    `InternalClientError: cannot switch to state 15` comes from a rollback on a connection
    the server has just closed, tests/field/test_central_shutdown.py).
    """
    if connection_lost:
        return True
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < _CHAIN_LIMIT:
        if _outage(current):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _outage(error: BaseException) -> bool:
    if isinstance(error, OSError | TimeoutError | asyncpg.InterfaceError):
        return True
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = getattr(error, "sqlstate", None) or ""
        return sqlstate[:2] in _RETRIABLE_SQLSTATE_CLASSES
    return False

"""The one place that decides whether a central-database error may pass by retrying."""

from __future__ import annotations

import asyncpg

_RETRIABLE_SQLSTATE_CLASSES = ("08", "40", "53", "57")  # connection, rollback, resources, operator


def is_retriable(error: BaseException) -> bool:
    """True for outages and transient conflicts; False for errors an operator must fix.

    The syncer retries both (it never drops buffered data), but a permanent error is logged
    as one that needs a person (wrong password, schema not migrated, ...).
    """
    if isinstance(error, OSError | TimeoutError | asyncpg.InterfaceError):
        return True
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = getattr(error, "sqlstate", None) or ""
        return sqlstate[:2] in _RETRIABLE_SQLSTATE_CLASSES
    return False

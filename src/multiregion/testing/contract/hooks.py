"""Proof that bad input never reaches an adapter: its hooks fail the test while blocked."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any
from unittest import mock


def _reached(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("an adapter hook ran for input the interface should have refused")


def hooks_blocked(part: object, hooks: Iterable[str]) -> AbstractContextManager[Any]:
    """While this lasts, calling any of ``part``'s ``hooks`` (``_put``, ``_ensure``...) fails
    the test: what is refused inside was refused by the interface, before any request."""
    blocked: dict[str, Any] = dict.fromkeys(hooks, _reached)
    patcher: AbstractContextManager[Any] = mock.patch.multiple(part, **blocked)
    return patcher

"""Hostile input for the fuzz tests, and the harness that calls a public callable with it.

Every argument is drawn either from a few valid values for a parameter of that name (so that
the call gets past the first check and reaches the deeper ones) or from ``anything``: huge
integers, NaN, NUL, lone surrogates, over-long names, path tricks, CR/LF, documents nested
5,000 deep, bytes, containers of all these. A call may succeed or raise a MultiregionError;
any other exception escapes the library's promise and fails the test.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from multiregion.errors import MultiregionError

EXAMPLES = int(os.environ.get("MULTIREGION_FUZZ_EXAMPLES", "20"))
"""Examples per fuzzed callable: bounded in ``make test``; raise it for a longer hunt."""

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Nested(dict):  # type: ignore[type-arg]
    """A document nested ``depth`` levels deep; hypothesis shows it short, not recursing."""

    depth = 0

    def _repr_pretty_(self, printer: Any, _cycle: bool) -> None:
        printer.text(f"nested({self.depth})")


class NestedList(list):  # type: ignore[type-arg]
    depth = 0

    def _repr_pretty_(self, printer: Any, _cycle: bool) -> None:
        printer.text(f"nested_list({self.depth})")


def nested(depth: int) -> Nested:
    """A document nested ``depth`` levels deep (built without recursion)."""
    document: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 2):
        document = {"a": document}
    top = Nested(a=document)
    top.depth = depth
    return top


def nested_list(depth: int) -> NestedList:
    value: list[Any] = []
    for _ in range(depth - 2):
        value = [value]
    top = NestedList([value])
    top.depth = depth
    return top


HUGE = st.sampled_from([2**63, -(2**63) - 1, 2**1024, 10**400, -(10**400), 2**62 + 1])
NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",
        "a\udcff",
        "\x7f",
        "a\r\nHost: evil.test",
        "/health\r\n\r\nGET /admin HTTP/1.1",
        "app.example.test\n",
        "\t",
        ".",
        "..",
        "../../etc",
        "/",
        "a//b",
        "a\\b",
        "CON",
        "\u202e",
        "\U0001f600",
    ]
) | st.builds(str.__mul__, st.sampled_from(["x", "é", "a/"]), st.sampled_from([300, 5000]))
DEEP = st.one_of(
    st.builds(nested, st.sampled_from([100, 5000])),
    st.builds(nested_list, st.sampled_from([100, 5000])),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE,
    st.floats(),
    st.text(max_size=12),
    NASTY_TEXT,
    st.binary(max_size=8),
)
ANYTHING = st.one_of(
    st.recursive(
        SCALARS,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.tuples(inner, inner)
            | st.dictionaries(st.text(max_size=4) | NASTY_TEXT, inner, max_size=3)
        ),
        max_leaves=6,
    ),
    DEEP,
)


def arguments(
    function: Callable[..., Any], valid: Mapping[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``function``: per parameter, a valid value or anything.

    Optional parameters are left out half the time; ``valid`` maps parameter names to
    strategies of valid values (parameters it does not name get only ``anything``)."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for param in inspect.signature(function).parameters.values():
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        choice = st.one_of(valid[param.name], ANYTHING) if param.name in valid else ANYTHING
        (required if param.default is param.empty else optional)[param.name] = choice
    return st.fixed_dictionaries(required, optional=optional)


def call(function: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """``function(**kwargs)``, its result consumed if it is an iterator; a MultiregionError is
    an allowed answer (None is returned), anything else escapes."""
    try:
        result = function(**kwargs)
        if inspect.isgenerator(result) or type(result).__name__.endswith("iterator"):
            result = list(result)
    except MultiregionError:
        return None
    return result


def public_methods(cls: type) -> list[str]:
    """The public methods of ``cls`` (properties excluded), by name."""
    return sorted(
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.isfunction(member)
    )

"""The deployment spec file's model, read through cattrs, and the JSON Schema made from it.

Every table is an attrs class (``health_check`` is the model's own ``HealthCheck``); the
settings tables of the parts (``[router]``, ``[store]``, ``[bucket]``, ``[probe]``) are checked
against the keyword arguments of the provider's factory, so a setting the adapter does not take
is refused before any part is built. Every problem of a file is reported at once, each with the
table path and, for a near-miss name, the name that was probably meant.
"""

from __future__ import annotations

import collections.abc
import difflib
import functools
import inspect
import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from typing import Any, Literal

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    StructureHandlerNotFoundError,
)
from cattrs.gen import make_dict_structure_fn

from multiregion import registry, validate
from multiregion.errors import InvalidInput, MultiregionError
from multiregion.model import HealthCheck

PARTS = registry.PARTS
SCHEMA_FILE = "deployment.schema.json"
FILLED_BY_THE_SPEC = {"store": frozenset({"regions"})}
"""Factory arguments the deployment supplies from the rest of the spec when a table omits them."""
_PRIMITIVES: tuple[type, ...] = (str, int, float, bool)


# --------------------------------------------------------------------------- the tables


def _within(check: Callable[[str, Any], object], field: str) -> Callable[[Any, Any, Any], None]:
    def run(_instance: Any, _attribute: Any, value: Any) -> None:
        if value is not None:
            check(field, value)

    return run


@attrs.frozen(kw_only=True)
class DeploymentTable:
    """``[deployment]``: the deployment's name and the provider every part uses by default."""

    name: str = attrs.field(validator=_within(validate.key, "name"))
    provider: str = "local"


@attrs.frozen(kw_only=True)
class RegionTable:
    """One ``[[regions]]`` entry: a region and the address its endpoint answers on."""

    name: str = attrs.field(validator=_within(validate.region, "name"))
    endpoint: str = attrs.field(validator=_within(validate.target, "endpoint"))
    endpoint_name: str | None = attrs.field(
        default=None, validator=_within(validate.endpoint_name, "endpoint_name")
    )


@attrs.frozen(kw_only=True)
class RouteTable:
    """``[route]``: the DNS name and its policy, in region names."""

    name: str = attrs.field(validator=_within(validate.dns_name, "name"))
    policy: Literal["failover", "weighted", "latency", "geo"] = "failover"
    order: list[str] | None = None
    weights: dict[str, float] | None = None
    locations: dict[str, str] | None = None
    default: str | None = None
    ttl: int = attrs.field(default=60, validator=_within(validate.ttl, "ttl"))


@attrs.frozen(kw_only=True)
class ObjectivesTable:
    """``[objectives]``: the RTO and RPO drills compare their measurements with."""

    rto_s: float | None = attrs.field(
        default=None, validator=_within(validate.finite_non_negative, "rto_s")
    )
    rpo_s: float | None = attrs.field(
        default=None, validator=_within(validate.finite_non_negative, "rpo_s")
    )


@attrs.frozen(kw_only=True)
class RunbookTable:
    """``[runbook]``: a Python file defining ``build(deployment)``, and its journal."""

    file: str = attrs.field(validator=_within(validate.key, "file"))
    journal: str | None = attrs.field(default=None, validator=_within(validate.key, "journal"))
    journal_in: Literal["file", "store", "bucket"] | None = None
    """Where the journal is kept: a file (the default on the local provider), or under the key
    ``journal`` in the deployment's bucket (the default elsewhere: it does not hang on the
    store's write region, the region a recovery is often run for) or store."""


@attrs.frozen(kw_only=True)
class SpecFile:
    """A whole spec file, as written (region names, not yet endpoints)."""

    deployment: DeploymentTable
    regions: list[RegionTable]
    route: RouteTable
    health_check: HealthCheck | None = None
    objectives: ObjectivesTable = ObjectivesTable()
    runbook: RunbookTable | None = None
    router: dict[str, Any] = attrs.Factory(dict)
    store: dict[str, Any] = attrs.Factory(dict)
    bucket: dict[str, Any] = attrs.Factory(dict)
    probe: dict[str, Any] = attrs.Factory(dict)


# --------------------------------------------------------------------------- the converter


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _strict(kind: type) -> Callable[[Any, Any], Any]:
    """TOML values as they are: no "5" -> 5, no true -> 1 (cattrs would convert both)."""

    def structure(value: Any, _hint: Any) -> Any:
        accepted = (int, float) if kind is float else kind
        if not isinstance(value, accepted) or (isinstance(value, bool) and kind is not bool):
            raise TypeError(f"must be {_describe(kind)}, not {_describe(type(value))}")
        return value

    return structure


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for kind in _PRIMITIVES:
        converter.register_structure_hook(kind, _strict(kind))

    def union(value: Any, hint: Any) -> Any:
        members = typing.get_args(hint)
        if value is None and type(None) in members:
            return None
        present = [m for m in members if m is not type(None)]
        if len(present) == 1:  # an optional value: its own errors, at their own paths
            return converter.structure(value, present[0])
        for member in present:
            if isinstance(member, type) and not attrs.has(member) and member not in _PRIMITIVES:
                if isinstance(value, member):
                    return value
                continue
            try:
                return converter.structure(value, member)
            except (TypeError, ValueError, KeyError, cattrs.BaseValidationError):
                continue
        raise TypeError(f"must be {_describe(hint)}, not {_describe(type(value))}")

    def iterable(value: Any, hint: Any) -> Any:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
            raise TypeError(f"must be a list, not {_describe(type(value))}")
        (item,) = typing.get_args(hint) or (Any,)
        return converter.structure(list(value), list[item])  # type: ignore[valid-type]

    def instance(value: Any, hint: Any) -> Any:
        kind = typing.get_origin(hint) or hint
        if not isinstance(value, kind):
            raise TypeError(f"must be {_describe(kind)}, not {_describe(type(value))}")
        return value

    def literal(value: Any, hint: Any) -> Any:
        allowed = typing.get_args(hint)
        if not isinstance(value, str | int) or value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(map(str, allowed))}")
        return value

    def sequence(hint: Any) -> Callable[[Any, Any], Any]:
        build = list_structure_factory(hint, converter)

        def structure(value: Any, hint: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise TypeError(f"must be a list, not {_describe(type(value))}")
            return build(value, hint)

        return structure

    def table(cls: type) -> Callable[[Any, Any], Any]:
        build: Callable[[Any, Any], Any] = make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
        )

        def structure(value: Any, hint: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"must be a table, not {_describe(type(value))}")
            return build(value, hint)

        return structure

    converter.register_structure_hook_factory(attrs.has, table)
    converter.register_structure_hook_factory(_origin_is(list), sequence)
    converter.register_structure_hook_func(_origin_is(Literal), literal)
    converter.register_structure_hook_func(_is_union, union)
    converter.register_structure_hook_func(_origin_is(collections.abc.Iterable), iterable)
    converter.register_structure_hook_func(_foreign, instance)
    return converter


def _origin_is(kind: object) -> Callable[[Any], bool]:
    def test(hint: Any) -> bool:
        return typing.get_origin(hint) is kind

    return test


def _foreign(hint: Any) -> bool:
    """A Python class no TOML value can be (an SSL context, a path object): taken as it is."""
    if hint is Any or _is_union(hint):
        return False
    kind = typing.get_origin(hint) or hint
    return (
        isinstance(kind, type)
        and not attrs.has(kind)
        and kind not in (*_PRIMITIVES, list, tuple, dict)
        and not issubclass(kind, collections.abc.Collection | collections.abc.Iterable)
    )


def _describe(hint: Any) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if hint in names:
        return names[hint]
    if _is_union(hint):
        return " or ".join(_describe(m) for m in typing.get_args(hint) if m is not type(None))
    if hint in (list, tuple) or typing.get_origin(hint) in (list, tuple):
        return "a list"
    if hint is dict or typing.get_origin(hint) in (dict, collections.abc.Mapping):
        return "a table"
    return f"a {getattr(hint, '__name__', hint)}"


CONVERTER = _make_converter()


# --------------------------------------------------------------------------- problems


@attrs.frozen
class Problem:
    """One thing wrong in a spec: where (a table path such as ``regions[1].name``) and what."""

    path: str
    text: str

    def __str__(self) -> str:
        return f"{self.path or '(top level)'}: {self.text}"


class SpecError(InvalidInput):
    """Everything wrong in one spec file; ``field`` and ``problem`` are those of the first."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        first = problems[0]
        super().__init__(f"{source}: {first.path}", first.text)
        self.source = source
        self.problems = tuple(problems)

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return super().__str__()
        lines = "\n".join(f"  {p}" for p in self.problems)
        return f"{self.source}: {len(self.problems)} problems\n{lines}"


def _join(path: str, part: str) -> str:
    if not part:
        return path
    if part.startswith("["):
        return path + part
    return f"{path}.{part}" if path else part


def suggest(name: str, known: collections.abc.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near-miss of one of ``known``, else an empty string."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_keys(
    path: str, names: collections.abc.Iterable[str], known: list[str]
) -> list[Problem]:
    what = "table" if not path else "key"
    return [
        Problem(path, f"unknown {what} {name!r}{suggest(name, known)}") for name in sorted(names)
    ]


def _problems(exc: BaseException, path: str) -> Iterator[Problem]:
    """The problems inside a cattrs error, each at its table path."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        for sub in exc.exceptions:
            yield from _problems(sub, _join(path, _where(sub)))
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        yield from unknown_keys(path, exc.extra_fields, known)
    elif isinstance(exc, InvalidInput):
        last = path.rsplit(".", 1)[-1]
        field = exc.field.removeprefix(f"{last}.") if last else exc.field
        yield Problem(_join(path, field) if field != last else path, exc.problem)
    elif isinstance(exc, KeyError):
        yield Problem(path, "is missing")
    else:
        yield Problem(path, str(exc))


def _where(exc: BaseException) -> str:
    """The attribute, index or key a cattrs note says ``exc`` happened at."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, cattrs.AttributeValidationNote):
            return note.name
        if isinstance(note, cattrs.IterableValidationNote):
            return f"[{note.index}]"
        if "@ key" in str(note):
            return f"[{str(note).split('@ key ', 1)[1]}]"
    return ""


# --------------------------------------------------------------------------- part settings


@functools.cache
def settings_model(provider: str, part: str) -> type | None:
    """An attrs class of the keyword settings ``provider``'s ``part`` takes (None: any)."""
    factory = registry.provider(provider).factory(part)
    signature = inspect.signature(factory)
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except (NameError, TypeError):
        hints = {}
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            return None
        if param.kind is param.VAR_POSITIONAL:
            continue
        optional = param.default is not param.empty or param.name in FILLED_BY_THE_SPEC.get(
            part, ()
        )
        default = param.default if param.default is not param.empty else None
        fields[param.name] = attrs.field(
            type=hints.get(param.name, Any),
            default=default if optional else attrs.NOTHING,
        )
    fields = dict(sorted(fields.items(), key=lambda item: item[1]._default is not attrs.NOTHING))
    return attrs.make_class(f"{provider}_{part}_settings", fields, kw_only=True, frozen=True)


def check_settings(part: str, provider: str, settings: Mapping[str, Any]) -> list[Problem]:
    """What is wrong with a part's settings table, as ``provider``'s factory would see it.

    An empty table leaves the part unconfigured (a spec without a store), so nothing is missing.
    """
    try:
        model = settings_model(provider, part)
    except MultiregionError as exc:
        return [Problem(f"{part}.provider", str(exc))]
    if model is None:
        return []
    known = [a.name for a in attrs.fields(model)]
    problems = unknown_keys(part, set(settings) - set(known), known)
    given = {k: v for k, v in settings.items() if k in known}
    for attribute in attrs.fields(model):
        if attribute.name not in given:
            if attribute.default is attrs.NOTHING and settings:  # an empty table: part unused
                problems.append(Problem(f"{part}.{attribute.name}", "is missing"))
            continue
        try:
            CONVERTER.structure(given[attribute.name], attribute.type)
        except (TypeError, ValueError, KeyError, cattrs.BaseValidationError) as exc:
            problems.extend(_problems(exc, f"{part}.{attribute.name}"))
        except StructureHandlerNotFoundError:
            continue  # a type no TOML value can express: the adapter checks it
    return problems


def read(data: Mapping[str, Any]) -> tuple[SpecFile | None, list[Problem]]:
    """The spec's tables, and every problem found (unknown keys, wrong types, missing keys)."""
    if not isinstance(data, Mapping):
        return None, [Problem("", "a deployment spec must be a table")]
    spec: SpecFile | None = None
    try:
        spec = CONVERTER.structure(dict(data), SpecFile)
        problems: list[Problem] = []
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        problems = list(_problems(exc, ""))
    head = data.get("deployment")
    default = head.get("provider", "local") if isinstance(head, Mapping) else "local"
    for part in PARTS:
        table = data.get(part)
        if not isinstance(table, Mapping):
            continue  # no table, or not a table: reported above
        settings = dict(table)
        provider = settings.pop("provider", default)
        if not isinstance(provider, str) or provider not in registry.available():
            where = f"{part}.provider" if "provider" in table else "deployment.provider"
            known = ", ".join(registry.available())
            problems.append(Problem(where, f"{provider!r} is not one of {known}"))
            continue
        problems.extend(check_settings(part, provider, settings))
    return (spec if not problems else None), problems


# --------------------------------------------------------------------------- JSON Schema


def _schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of a value of type ``hint``; {} (anything) for Python-only types."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    if origin is Literal:
        return {"enum": list(args)}
    if _is_union(hint):
        members = [_schema(m) for m in args if m is not type(None)]
        if any(not m for m in members):
            return {}
        return members[0] if len(members) == 1 else {"anyOf": members}
    if origin is tuple and args and args[-1] is not Ellipsis:
        size = len(args)
        return {
            "type": "array",
            "prefixItems": [_schema(a) for a in args],
            "minItems": size,
            "maxItems": size,
        }
    if origin in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        return {"type": "array", "items": _schema(args[0]) if args else {}}
    if origin in (dict, collections.abc.Mapping):
        return {"type": "object", "additionalProperties": _schema(args[1]) if args else {}}
    if hint is dict:
        return {"type": "object"}
    if isinstance(hint, type) and attrs.has(hint):
        return _object(hint)
    return {}


def _object(cls: type) -> dict[str, Any]:
    attrs.resolve_types(cls)
    properties: dict[str, Any] = {}
    required = []
    for attribute in attrs.fields(cls):
        # A field's own narrowing (choices, a range) as its metadata says, for editors.
        schema = {**_schema(attribute.type), **attribute.metadata.get("json_schema", {})}
        default = attribute.default
        if default is attrs.NOTHING:
            required.append(attribute.name)
        elif isinstance(default, str | int | float | bool) and schema:
            schema = {**schema, "default": default}
        properties[attribute.name] = schema
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        result["description"] = inspect.cleandoc(cls.__doc__).split("\n\n")[0]
    if required:
        result["required"] = required
    result["additionalProperties"] = False
    return result


def _part_schema(part: str) -> dict[str, Any]:
    """A part's table: one of the providers' settings, each with its ``provider`` name."""
    choices = []
    for name in registry.available():
        model = settings_model(name, part)
        schema: dict[str, Any] = {"type": "object", "properties": {}}
        if model is not None:
            schema = _object(model)
        properties = {"provider": {"const": name}, **schema["properties"]}
        choices.append({**schema, "properties": properties, "title": f"{name} {part}"})
    return {"anyOf": choices}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file, made from the same model the loader checks with."""
    schema = _object(SpecFile)
    schema["properties"]["deployment"]["properties"]["provider"] = {
        "enum": registry.available(),
        "default": "local",
    }
    for part in PARTS:
        schema["properties"][part] = _part_schema(part)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://multiregion.invalid/deployment.schema.json",
        "title": "multiregion deployment spec",
        **schema,
    }


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def shipped_schema() -> str:
    """The schema file in the package (what editors point at)."""
    return resources.files("multiregion").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")

"""Which structs each served tag puts on the wire: its request struct and its output union."""

from __future__ import annotations

import importlib
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

import schemas
from schemas import Chunk, Error, Output, Progress, Result, Tag
from services.handlers import HANDLERS, HandlerSpec

DEFAULT_OUTPUT: Any = Chunk | Progress | Result | Error
"""The output union of a tag whose schema module declares none of its own."""


@dataclass(frozen=True, slots=True)
class TagContract:
    """What one tag puts on the wire: its request struct and the structs of its output union."""

    tag: Tag
    request_type: type[msgspec.Struct]
    output_type: Any
    outputs: tuple[type[Output], ...]


def tag_contracts(handlers: Mapping[Tag, HandlerSpec] = HANDLERS) -> list[TagContract]:
    """One entry per served tag, in the order of the `Tag` enum (so row order in `HANDLERS` does not matter)."""
    order = list(Tag)
    contracts = []
    for tag in sorted(handlers, key=order.index):
        request_type = handlers[tag].request_type
        output_type = output_union(tag, request_type)
        contracts.append(TagContract(tag, request_type, output_type, typing.get_args(output_type)))
    return contracts


def output_union(tag: Tag, request_type: type[Any]) -> Any:
    """The union a subscriber to `tag`'s outputs decodes (see the package docstring for the lookup order)."""
    modules = [sys.modules[request_type.__module__]]
    try:
        modules.append(importlib.import_module(f"{schemas.__name__}.{tag.value}"))
    except ModuleNotFoundError as exc:
        if exc.name != f"{schemas.__name__}.{tag.value}":
            raise
    wanted = request_type.__name__.removesuffix("Request") + "Output"
    for module in modules:
        if _is_output_union(found := getattr(module, wanted, None)):
            return found
    for module in modules:
        unions = [value for name, value in vars(module).items() if name.endswith("Output") and _is_output_union(value)]
        if len(unions) == 1:
            return unions[0]
    return DEFAULT_OUTPUT


def _is_output_union(value: object) -> bool:
    if not isinstance(value, types.UnionType) and typing.get_origin(value) is not typing.Union:
        return False
    members = typing.get_args(value)
    return bool(members) and all(isinstance(m, type) and issubclass(m, Output) for m in members)

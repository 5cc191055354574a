"""Block Kit models (slack_sdk.models) to JSON-ready dicts in one pass.

`JsonObject.to_dict()` validates an object, then walks its children, each of which validates and
walks its own children again, and so on: about a fifth of the CPU askdesk spends per request went
there. `to_json_ready()` gives exactly what `to_dict()` gives and runs every validator slack_sdk runs
(an invalid block still raises SlackObjectFormationError), but visits each object once. Classes that
define their own `to_dict` (options, confirm dialogs, …) are serialised by that `to_dict`.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from slack_sdk.models.basic_objects import EMPTY_ALLOWED_TYPE_AND_PROPERTY_LIST, JsonObject, _is_validator

_EMPTY_ALLOWED = frozenset((item["type"], item["property"]) for item in EMPTY_ALLOWED_TYPE_AND_PROPERTY_LIST)
_BASE = JsonObject.__dict__


@cache
def _plan(cls: type) -> tuple[str, ...] | None:
    """The class's validator names in slack_sdk's order, or None when the class serialises itself."""
    for name in ("to_dict", "get_non_null_attributes", "get_object_attribute", "validate_json"):
        if getattr(cls, name) is not _BASE[name]:
            return None
    return tuple(sorted(name for name in dir(cls) if not name.startswith("__") and _is_validator(getattr(cls, name))))


def _compatible(value: Any) -> Any:
    """slack_sdk's `to_dict_compatible`: lists element-wise, objects with `to_dict` as dicts."""
    if isinstance(value, (list, tuple)):
        return [_compatible(v) for v in value]
    if isinstance(value, JsonObject):
        return to_json_ready(value)
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None and callable(to_dict):
        return {k: _compatible(v) for k, v in to_dict().items()}
    return value


def to_json_ready(obj: JsonObject) -> dict[str, Any]:
    """`obj.to_dict()`, computed in one pass."""
    validators = _plan(type(obj))
    if validators is None:
        return {k: _compatible(v) for k, v in obj.to_dict().items()}
    for name in validators:
        getattr(obj, name)()
    kind = getattr(obj, "type", None)
    out: dict[str, Any] = {}
    for key in _keys(obj):
        value = getattr(obj, key, None)
        if value is None:
            continue
        if (kind, key) not in _EMPTY_ALLOWED and getattr(value, "__len__", None) is not None and len(value) == 0:
            continue
        out[key] = _compatible(value)
    return out


_KEYS: dict[type, tuple[str, ...]] = {}


def _keys(obj: JsonObject) -> tuple[str, ...]:
    """`sorted(obj.attributes)`. Block Kit classes declare `attributes` as a property returning a
    fixed set per class, which slack_sdk builds anew on every read (set unions up the class tree):
    for those it is computed once per class. Anything else is read from the instance every time."""
    cls = type(obj)
    keys = _KEYS.get(cls)
    if keys is None:
        keys = tuple(sorted(obj.attributes))
        if isinstance(inspect.getattr_static(cls, "attributes", None), (property, set, frozenset)):
            _KEYS[cls] = keys
    return keys

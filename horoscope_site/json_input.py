"""JSON sent to us by someone else (a webhook body, a field typed in the admin), read strictly.

Python's json module accepts things that later break on us: nesting deep enough to exhaust the
stack (RecursionError, a 500), NaN and Infinity (PostgreSQL's jsonb refuses them), numbers too
big for anything downstream, unpaired surrogates and NUL characters (not storable), and repeated
keys (the last silently wins). `json_input_loads` refuses all of these with a short reason a
caller can put in a 400 answer or a form error; `JsonInputField` is the admin's form field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django import forms
from django.db import models
from django.forms.fields import InvalidJSONInput

# Far deeper than any message we take (SNS envelopes nest 4 or 5 levels) and far below the stack.
MAX_DEPTH = 32
# Beyond 64-bit integers nothing downstream keeps the value exactly.
MAX_INT = 2**63
# What the depth scan looks at: an escape, a quote, a bracket (one pass, no backtracking).
_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


class JsonInputError(ValueError):
    """The input is not JSON we accept; str() is the reason, safe to show the sender."""


def _no_constants(name: str):
    raise JsonInputError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError("a number is too large")
    return value


def _int(text: str) -> int:
    if len(text) > 20:  # checked before int() so a huge literal costs nothing
        raise JsonInputError("a number is too large")
    value = int(text)
    if abs(value) >= MAX_INT:
        raise JsonInputError("a number is too large")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise JsonInputError("an object repeats a key")
    return result


def _depth(text: str) -> int:
    deepest = depth = 0
    in_string = False
    for match in _TOKENS.finditer(text):
        mark = match.group()
        if mark == '"':
            in_string = not in_string
        elif in_string or len(mark) > 1:
            continue
        elif mark in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif mark in "]}":
            depth -= 1
    return deepest


def _check_text(value: Any) -> None:
    """Every string, key or value, must be storable: encodable (no unpaired surrogate from a
    \\ud800 escape) and free of NUL (PostgreSQL's text and jsonb refuse \\u0000)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise JsonInputError("a string holds an unpaired surrogate") from None
            if "\x00" in item:
                raise JsonInputError("a string holds a NUL character")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def json_input_loads(data: bytes | str, *, expect: type | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """The value in `data` (UTF-8 if bytes); raises JsonInputError saying what is wrong with it.

    `expect` (dict or list) also refuses any other top-level type.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise JsonInputError("not UTF-8 text") from None
    elif isinstance(data, str):
        text = data
    else:
        raise JsonInputError("not text")
    if _depth(text) > max_depth:
        raise JsonInputError(f"nested deeper than {max_depth} levels")
    try:
        value = json.loads(
            text, parse_constant=_no_constants, parse_float=_float, parse_int=_int, object_pairs_hook=_object
        )
    except JsonInputError:
        raise
    except RecursionError:  # the scan above should make this unreachable; never a 500 if not
        raise JsonInputError(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not valid JSON"
        raise JsonInputError(f"not valid JSON ({reason})") from None
    _check_text(value)
    if expect is not None and not isinstance(value, expect):
        raise JsonInputError(f"expected a JSON {'object' if expect is dict else 'array'}")
    return value


class JsonInputField(forms.JSONField):
    """forms.JSONField reading through json_input_loads: a form error, never a RecursionError."""

    def to_python(self, value):
        if self.disabled or value in self.empty_values or isinstance(value, list | dict | int | float):
            return super().to_python(value)
        try:
            json_input_loads(value)
        except JsonInputError as exc:
            raise forms.ValidationError(f"Enter valid JSON: {exc}.", code="invalid") from None
        return super().to_python(value)

    def bound_data(self, data, initial):
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            return json_input_loads(data)
        except JsonInputError:
            return InvalidJSONInput(data)


# For a ModelAdmin: `formfield_overrides = JSON_INPUT_ADMIN_FIELDS` reads its JSON fields strictly.
JSON_INPUT_ADMIN_FIELDS = {models.JSONField: {"form_class": JsonInputField}}

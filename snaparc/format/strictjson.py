"""JSON from hostile bytes: one parser for every document snaparc judges.

`json.loads` accepts a duplicate key (keeping the last value, so two readers
can see two documents), `NaN` / `Infinity`, and floats. `strict_loads`
refuses the first two always and floats where the caller forbids them, by
calling `refuse(kind, detail)` for the caller's own error class and words:
kind is "duplicate" (detail: the key), "constant" (the literal) or "float"
(its text). Other malformed JSON raises `ValueError` (or `RecursionError`
for absurd nesting), as `json.loads` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

Kind = Literal["duplicate", "constant", "float"]


def strict_loads(
    text: str, *, refuse: Callable[[Kind, str], Exception], floats: bool = True
) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise refuse("duplicate", key)
            out[key] = value
        return out

    def constant(literal: str) -> Any:
        raise refuse("constant", literal)

    def no_float(literal: str) -> Any:
        raise refuse("float", literal)

    if floats:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_float=no_float)

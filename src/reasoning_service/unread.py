"""Fields a caller sent that nothing reads: named in the response's `warnings` (as the Kubernetes API
server warns of unknown fields), so a typo such as `grup` for `group` does not silently drop a rule.

The request and the homelab problem types accept extra fields (a newer client's options, labels a
caller keeps beside a pod); that is why these are warnings, not 422s.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from pydantic import BaseModel


def unread_fields(model: BaseModel, path: str = "") -> list[str]:
    """One line per extra field in `model` and the models inside it, with its dotted path (the
    convention of a 422's `field`: `problem.pods.3.grup`) and the closest known field, if any."""
    return [_line(model, where, name) for model, where, name in _extras(model, path)]


def _extras(model: BaseModel, path: str) -> Iterator[tuple[BaseModel, str, str]]:
    for name in model.model_extra or {}:
        yield model, path, name
    for name in type(model).model_fields:
        value = getattr(model, name)
        here = f"{path}.{name}" if path else name
        if isinstance(value, BaseModel):
            yield from _extras(value, here)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _extras(item, f"{here}.{i}")


def _line(model: BaseModel, path: str, name: str) -> str:
    where = f"{path}.{name}" if path else name
    close = difflib.get_close_matches(name, list(type(model).model_fields), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{where}: not a field of {type(model).__name__}, ignored{hint}"

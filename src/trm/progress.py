"""Progress bars for long commands (tqdm): count, rate and ETA on stderr.

Shown only on a terminal (tqdm's `disable=None`): logs, pipes and CI get no bar lines, and
`--quiet` turns them off on a terminal too. Stdout stays for results (tables, JSON).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sized
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def bar(total: int | None, desc: str, unit: str, *, show: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar of `total` `unit`s on stderr; a no-op unless `show` and stderr is a terminal."""
    return tqdm(total=total, desc=desc, unit=unit, disable=None if show else True, file=sys.stderr, smoothing=0.1, **kwargs)


def track(items: Iterable[T], desc: str, unit: str, *, show: bool = True) -> Iterator[T]:
    """Iterate `items` with a bar (its length as the total where it has one); see `bar`."""
    total = len(items) if isinstance(items, Sized) else None
    return iter(tqdm(items, total=total, desc=desc, unit=unit, disable=None if show else True, file=sys.stderr, smoothing=0.1))

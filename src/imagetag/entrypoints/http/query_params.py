"""Rules every query string of the API follows."""

from __future__ import annotations

from collections import Counter
from typing import Any

from litestar import Request

from imagetag.domain.errors import InvalidInput


def refuse_repeated_parameters(request: Request[Any, Any, Any]) -> None:
    """Every query parameter takes one value, lists being comma-separated: a repeated one
    is refused (400) rather than silently cut down to one of its values."""
    counts = Counter(name for name, _ in request.query_params.multi_items())
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise InvalidInput(
            f"query parameter {repeated[0]} is given {counts[repeated[0]]} times; give it "
            "once, with a comma-separated list where it takes several names "
            "(e.g. objects=dog,cat)",
            field=repeated[0],
        )

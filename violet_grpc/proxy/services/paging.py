"""AIP-158 page size rules shared by every List method."""
from __future__ import annotations

from violet_grpc import errors


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """0 means the default, above the maximum is cut to it, negative is an error."""
    if requested < 0:
        raise errors.InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE",
                                     metadata={"field": "page_size"})
    return min(requested or default, maximum)

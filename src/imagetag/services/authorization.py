"""The role check every use case that changes something makes first."""

from __future__ import annotations

from imagetag.domain.errors import PermissionDenied
from imagetag.domain.principals import Principal, Role


def require(principal: Principal, needed: Role) -> None:
    """Raise ``PermissionDenied`` unless the principal's role includes ``needed``."""
    if not principal.may(needed):
        raise PermissionDenied(principal.role, needed)

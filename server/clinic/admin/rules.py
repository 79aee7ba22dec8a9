"""The directory's rules as pure code: institution levels and parents, alliance kinds."""

from __future__ import annotations

from collections.abc import Callable

from yilian.server.core.errors import ValidationFailed
from yilian.server.core.models.alliance import LEVELS

#: province 0 ... village 4: a parent's rank is lower than its child's.
RANK = {level: i for i, level in enumerate(LEVELS)}


def check_parent_level(level: str, parent_level: str | None) -> None:
    """A parent is of a higher level than its child (a province hospital over a city one,
    ..., a township centre over a village clinic); 422 ``invalid_parent_level`` otherwise."""
    if parent_level is not None and RANK[parent_level] >= RANK[level]:
        raise ValidationFailed(f"a {level} institution cannot have a {parent_level} parent: "
                               "the parent must be of a higher level", code="invalid_parent_level",
                               details={"field": "parent_id", "level": level,
                                        "parent_level": parent_level})


def check_children_levels(level: str, child_levels: list[str]) -> None:
    """An institution's new level stays above every child's (422 ``invalid_parent_level``)."""
    below = [c for c in child_levels if RANK[c] <= RANK[level]]
    if below:
        raise ValidationFailed(f"a {level} institution cannot have {below[0]} branches: give "
                               "the branches a lower level or another parent first",
                               code="invalid_parent_level",
                               details={"field": "level", "level": level,
                                        "child_levels": sorted(set(below))})


def check_no_cycle(institution_id: int, parent_id: int | None,
                   parent_of: Callable[[int], int | None]) -> None:
    """The new parent is not the institution itself nor one of its branches (422
    ``institution_cycle``). ``parent_of`` gives an institution's current parent."""
    seen: set[int] = set()
    node = parent_id
    while node is not None and node not in seen:
        if node == institution_id:
            raise ValidationFailed("an institution cannot be its own parent or a branch of its "
                                   "own branch", code="institution_cycle",
                                   details={"field": "parent_id", "parent_id": parent_id})
        seen.add(node)
        node = parent_of(node)


def check_alliance_kind(kind: str, specialty: str | None) -> None:
    """A specialty alliance (专科联盟) names its specialty (422 ``specialty_required``)."""
    if kind == "specialty" and not specialty:
        raise ValidationFailed("a specialty alliance needs its specialty",
                               code="specialty_required", details={"field": "specialty"})

"""``piaa cull``: bursts grouped, the best frame of each picked by a profile, technical faults flagged,
ratings written into XMP sidecars (``docs/guide/cull.md``)."""

from piaa.cull.core import (
    FLAGS,
    STATUSES,
    CullResult,
    CullRow,
    CullSettings,
    cull,
    find_duplicates,
    flag_photos,
    group_photos,
    rank_groups,
    star_ratings,
    with_status,
)

__all__ = [
    "FLAGS",
    "STATUSES",
    "CullResult",
    "CullRow",
    "CullSettings",
    "cull",
    "find_duplicates",
    "flag_photos",
    "group_photos",
    "rank_groups",
    "star_ratings",
    "with_status",
]

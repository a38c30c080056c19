"""The audience over time in SQL: one row per live space per sample (every 10 s by
default), written by one control-plane worker at a time; read by the replay and the
host's analytics."""

from __future__ import annotations

from majlis.store.base import Row
from majlis.types import AudienceSample

__all__ = ["INSERT_SAMPLE", "LIST_SAMPLES", "sample_from_row"]

INSERT_SAMPLE = (
    "INSERT INTO audience_samples (space_id, at, listeners, reactions, joins)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (space_id, at) DO NOTHING"
)
LIST_SAMPLES = (
    "SELECT at, listeners, reactions, joins FROM audience_samples WHERE space_id = $1"
    " ORDER BY at LIMIT $2"
)


def sample_from_row(row: Row) -> AudienceSample:
    return AudienceSample(
        float(row["at"]), int(row["listeners"]), int(row["reactions"]), int(row["joins"])
    )

"""A private space's guest list in SQL: who may listen besides its host and its stage."""

from __future__ import annotations

__all__ = ["ADD_GUEST", "IS_GUEST", "LIST_GUESTS", "REMOVE_GUEST"]

ADD_GUEST = (
    "INSERT INTO guests (space_id, user_id, added_by, at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT DO NOTHING RETURNING 1"
)
REMOVE_GUEST = "DELETE FROM guests WHERE space_id = $1 AND user_id = $2 RETURNING 1"
IS_GUEST = "SELECT 1 FROM guests WHERE space_id = $1 AND user_id = $2"
LIST_GUESTS = (
    "SELECT u.id, u.username, u.display_name, u.created_at, u.password_hash, u.email"
    " FROM guests g JOIN users u ON u.id = g.user_id WHERE g.space_id = $1"
    " ORDER BY lower(u.username)"
)

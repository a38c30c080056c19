"""Users' pictures in SQL: one row per user, replaced whole on each upload."""

from __future__ import annotations

from majlis.store.base import Row
from majlis.types import Avatar

__all__ = ["DELETE_AVATAR", "GET_AVATAR", "PUT_AVATAR", "avatar_from_row"]

PUT_AVATAR = (
    "INSERT INTO avatars (user_id, content_type, data, updated_at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type,"
    " data = excluded.data, updated_at = excluded.updated_at"
)
GET_AVATAR = "SELECT content_type, data, updated_at FROM avatars WHERE user_id = $1"
DELETE_AVATAR = "DELETE FROM avatars WHERE user_id = $1 RETURNING user_id"


def avatar_from_row(row: Row) -> Avatar:
    return Avatar(str(row["content_type"]), bytes(row["data"]), float(row["updated_at"]))

"""index images on (created_at, id) in place of created_at alone

Revision ID: 0004
Revises: 0003

A search with a creation window closed at both ends bounds the image id by the newest
image created in the window (``queries._window_bounds``); with ``id`` in the index that
bound is an index-only scan of the window. The new index serves whatever the old one
served (same leading column), so the old one goes. No rows change. On PostgreSQL the
build holds a lock that blocks writes to ``images`` while it runs (seconds per million
images); the new index is built before the old one is dropped, so reads keep an index on
``created_at`` throughout. Downgrade restores the index on ``created_at`` alone.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_images_created_at_id", "images", ["created_at", "id"])
    op.drop_index("ix_images_created_at", table_name="images")


def downgrade() -> None:
    op.create_index("ix_images_created_at", "images", ["created_at"])
    op.drop_index("ix_images_created_at_id", table_name="images")

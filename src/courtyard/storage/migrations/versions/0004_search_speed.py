"""search speed: each search document knows its channel

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 05:50:00

``search_documents.channel_id`` lets a word search check visibility on the document it has
just matched, instead of joining the message for every match; and every document's body
ends with its channel's scope term (``§<channel id>``, never a word), so ``in:#channel`` is
matched inside the full-text index. Existing documents are filled in batches of message ids.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 20_000

# On SQLite the update trigger of migration 0002 keeps the FTS5 index in step.
SQLITE_FILL = """
UPDATE search_documents
SET channel_id = (SELECT channel_id FROM messages WHERE messages.id = search_documents.message_id),
    body = body || ' ' || char(167)
        || (SELECT channel_id FROM messages WHERE messages.id = search_documents.message_id)
WHERE message_id > :low AND message_id <= :high AND channel_id IS NULL
"""
POSTGRESQL_FILL = """
UPDATE search_documents AS d
SET channel_id = m.channel_id,
    body = d.body || CAST('''' || chr(167) || m.channel_id || '''' AS tsvector)
FROM messages AS m
WHERE m.id = d.message_id AND d.message_id > :low AND d.message_id <= :high
  AND d.channel_id IS NULL
"""


def upgrade() -> None:
    op.add_column("search_documents", sa.Column("channel_id", Id, nullable=True))
    bind = op.get_bind()
    last = bind.execute(sa.text("SELECT max(message_id) FROM search_documents")).scalar()
    fill = sa.text(SQLITE_FILL if bind.dialect.name == "sqlite" else POSTGRESQL_FILL)
    low = 0
    while last is not None and low < last:
        bind.execute(fill, {"low": low, "high": low + BATCH})
        low += BATCH


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            "UPDATE search_documents SET body = substr(body, 1, instr(body, ' ' || char(167)) - 1)"
            " WHERE instr(body, ' ' || char(167)) > 0"
        )
        op.execute("ALTER TABLE search_documents DROP COLUMN channel_id")
    else:
        op.execute(
            "UPDATE search_documents SET body = ts_delete(body, chr(167) || channel_id)"
            " WHERE channel_id IS NOT NULL"
        )
        op.drop_column("search_documents", "channel_id")

"""SQLite stores each channel's messages together

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 17:30:00

On SQLite ``messages`` becomes a ``WITHOUT ROWID`` table whose primary key is
``(channel_id, seq)``: the rows of one channel sit next to each other in the file, in order,
so a 50-message history page reads two or three table pages instead of about one page per
message (the messages of busy channels interleave in arrival order). ``id`` keeps its values
and its meaning, with a unique index (``uq_messages_id``) for lookups and foreign keys; new
ids are numbered by the message repository from ``message_id_counter``, the highest id ever
given out, so no id is used twice (SQLite's rowids reused the newest id after a delete).
ADR 0018 has the measurements. PostgreSQL is unchanged: its heap is not ordered by any key.

The table is rebuilt by copying every row in ``(channel_id, seq)`` order, in one
transaction. On a 2.0 GB database of 10M messages it took 1 min 40 s and needed 5.8 GB of
free disk at its peak (the new copy, and the write-ahead log holding it until the commit). It must run with foreign keys off (``migrations/env.py`` does that): with them
on, dropping the old table would first delete its rows and cascade to reactions, mentions,
versions and search documents.
"""

from __future__ import annotations

import logging
import time

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

COLUMNS = (
    "id, channel_id, seq, sender_id, text, created_at, edited_at, version, deleted_at, "
    "deleted_by, thread_root_id, reply_count, last_reply_at, reply_participant_ids, "
    "pinned_at, pinned_by, mentions_channel, mentions_here, client_message_id"
)

# The columns and the constraints both layouts share; only the keys differ.
SHARED = """
    id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    sender_id INTEGER NOT NULL,
    text TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    version INTEGER NOT NULL,
    deleted_at BIGINT,
    deleted_by INTEGER,
    thread_root_id INTEGER,
    reply_count INTEGER NOT NULL,
    last_reply_at BIGINT,
    reply_participant_ids TEXT NOT NULL,
    pinned_at BIGINT,
    pinned_by INTEGER,
    mentions_channel BOOLEAN NOT NULL,
    mentions_here BOOLEAN NOT NULL,
    client_message_id VARCHAR(64),
    CONSTRAINT fk_messages_channel_id_channels FOREIGN KEY(channel_id)
        REFERENCES channels (id) ON DELETE CASCADE,
    CONSTRAINT fk_messages_deleted_by_users FOREIGN KEY(deleted_by) REFERENCES users (id),
    CONSTRAINT fk_messages_pinned_by_users FOREIGN KEY(pinned_by) REFERENCES users (id),
    CONSTRAINT fk_messages_sender_id_users FOREIGN KEY(sender_id) REFERENCES users (id),
    CONSTRAINT fk_messages_thread_root_id_messages FOREIGN KEY(thread_root_id)
        REFERENCES messages (id),
    CONSTRAINT uq_messages_channel_id_seq UNIQUE (channel_id, seq),
    CONSTRAINT uq_messages_sender_id_client_message_id UNIQUE (sender_id, client_message_id),"""

CREATE = f"""
CREATE TABLE messages_by_channel ({SHARED}
    CONSTRAINT uq_messages_id UNIQUE (id),
    CONSTRAINT pk_messages PRIMARY KEY (channel_id, seq)
) WITHOUT ROWID
"""

# The old table as migration 0001 created it (for the downgrade).
CREATE_WITH_ROWID = f"""
CREATE TABLE messages_by_id ({SHARED}
    CONSTRAINT pk_messages PRIMARY KEY (id)
)
"""

# The highest message id ever given out, so that ids are never reused, not even the newest one
# after its message is deleted (SQLite's rowids, largest plus one, would reuse it).
CREATE_COUNTER = """
CREATE TABLE message_id_counter (
    only_row INTEGER NOT NULL CHECK (only_row = 1),
    last_id INTEGER NOT NULL,
    CONSTRAINT pk_message_id_counter PRIMARY KEY (only_row)
)
"""

INDEXES = (
    "CREATE INDEX ix_messages_channel_top_level ON messages (channel_id, seq) "
    "WHERE thread_root_id IS NULL",
    "CREATE INDEX ix_messages_pinned ON messages (channel_id, pinned_at) "
    "WHERE pinned_at IS NOT NULL",
    "CREATE INDEX ix_messages_thread ON messages (thread_root_id, seq) "
    "WHERE thread_root_id IS NOT NULL",
)


def _rebuild(create: str, new_name: str, order: str) -> None:
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "migration 0006 must run with SQLite's foreign keys off: dropping the old "
            "messages table would cascade to reactions and mentions (run `courtyard migrate`)"
        )
    started = time.monotonic()
    before = bind.exec_driver_sql("SELECT count(*) FROM messages").scalar()
    op.execute(create)
    op.execute(
        f"INSERT INTO {new_name} ({COLUMNS}) SELECT {COLUMNS} FROM messages ORDER BY {order}"  # noqa: S608
    )
    after = bind.exec_driver_sql(f"SELECT count(*) FROM {new_name}").scalar()  # noqa: S608
    if after != before:
        raise RuntimeError(f"copied {after} of {before} messages; nothing was changed")
    op.execute("DROP TABLE messages")
    op.execute(f"ALTER TABLE {new_name} RENAME TO messages")
    for statement in INDEXES:
        op.execute(statement)
    log.info("rebuilt messages (%d rows) in %.1f s", before, time.monotonic() - started)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(CREATE, "messages_by_channel", "channel_id, seq")
        op.execute(CREATE_COUNTER)
        op.execute(
            "INSERT INTO message_id_counter (only_row, last_id) "
            "SELECT 1, coalesce(max(id), 0) FROM messages"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE message_id_counter")
        _rebuild(CREATE_WITH_ROWID, "messages_by_id", "id")

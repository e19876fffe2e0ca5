"""files and search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:30:00

Files, and the search index of messages. The search index is database-specific: SQLite gets
an FTS5 table (external content over ``search_documents``, kept in step by triggers);
PostgreSQL a GIN index over the ``tsvector`` column. Existing messages are indexed by
``courtyard search reindex`` (the terms come from Courtyard's own tokeniser, not from SQL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_FTS = [
    # ``ascii``: terms are already cut and folded by Courtyard; any non-ASCII character is
    # part of a term and ASCII spaces separate them, so FTS5 sees exactly our terms.
    """CREATE VIRTUAL TABLE search_fts USING fts5(
        body, content='search_documents', content_rowid='message_id', tokenize='ascii'
    )""",
    """CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN
        INSERT INTO search_fts(rowid, body) VALUES (new.message_id, new.body);
    END""",
    """CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN
        INSERT INTO search_fts(search_fts, rowid, body) VALUES ('delete', old.message_id, old.body);
    END""",
    """CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents BEGIN
        INSERT INTO search_fts(search_fts, rowid, body) VALUES ('delete', old.message_id, old.body);
        INSERT INTO search_fts(rowid, body) VALUES (new.message_id, new.body);
    END""",
]


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("uploader_id", Id, nullable=False),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=127), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=96), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=96), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("inline", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("attached_at", sa.BigInteger(), nullable=True),
        sa.Column("orphaned_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_files_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["uploader_id"], ["users.id"], name=op.f("fk_files_uploader_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_files_storage_key")),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_message_id", ["message_id", "position"], unique=False)
        batch_op.create_index("ix_files_uploader_id", ["uploader_id"], unique=False)

    op.create_table(
        "search_documents",
        sa.Column("message_id", Id, autoincrement=False, nullable=False),
        sa.Column("body", postgresql.TSVECTOR().with_variant(sa.Text(), "sqlite"), nullable=False),
        sa.Column("has_link", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_search_documents_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_search_documents")),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute("CREATE INDEX ix_search_documents_body ON search_documents USING gin (body)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("search_documents_au", "search_documents_ad", "search_documents_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_search_documents_body")
    op.drop_table("search_documents")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_uploader_id")
        batch_op.drop_index("ix_files_message_id")
    op.drop_table("files")

"""search pairs: PostgreSQL indexes adjacent word pairs for phrases

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 08:30:00

PostgreSQL gets ``search_pairs``: for every search document with two adjacent ASCII terms,
its *pair terms* (``pull¶request``, see ``repositories.search_syntax.pair_terms``) in a ``tsvector``
under a GIN index, so a phrase is looked up by its pairs instead of fetching every document
that holds all its words. A table of its own keeps ``search_documents`` (walked newest first
by every word search) as small as it was. Existing documents get their pairs from the
positions already in their ``tsvector`` (the terms the tokeniser wrote), in batches of
message ids; the GIN index is built once at the end. SQLite is unchanged: FTS5 matches
phrases from its own position lists.

Both search GIN indexes keep a pending list of at most 256 kB (PostgreSQL's default is
4 MB): every search scans the whole pending list, and at 4 MB that cost a word search
13-25 ms more at 40,000 documents, while writing with 256 kB cost about the same.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 20_000
# kB of not yet merged GIN entries that every search reads through (see the docstring).
PENDING_LIST_KB = 256
log = logging.getLogger("alembic.runtime.migration")

# Pairs of adjacent ASCII terms (letters and digits, as the tokeniser folds them); chr(182)
# is the pair mark ¶. Documents without such a pair get no row.
POSTGRESQL_FILL = """
WITH positioned AS (
    SELECT s.message_id, u.lexeme, p.pos
    FROM search_documents AS s
    CROSS JOIN LATERAL unnest(s.body) AS u
    CROSS JOIN LATERAL unnest(u.positions) AS p(pos)
    WHERE s.message_id > :low AND s.message_id <= :high AND u.lexeme ~ '^[a-z0-9]+$'
)
INSERT INTO search_pairs (message_id, pairs)
SELECT a.message_id,
       CAST(string_agg(DISTINCT '''' || a.lexeme || chr(182) || b.lexeme || '''', ' ') AS tsvector)
FROM positioned AS a
JOIN positioned AS b ON b.message_id = a.message_id AND b.pos = a.pos + 1
GROUP BY a.message_id
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(
        f"ALTER INDEX ix_search_documents_body SET (gin_pending_list_limit = {PENDING_LIST_KB})"
    )
    op.create_table(
        "search_pairs",
        sa.Column("message_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pairs", postgresql.TSVECTOR(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["search_documents.message_id"],
            name=op.f("fk_search_pairs_message_id_search_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_search_pairs")),
    )
    last = bind.execute(sa.text("SELECT max(message_id) FROM search_documents")).scalar()
    started = time.monotonic()
    low = 0
    while last is not None and low < last:
        bind.execute(sa.text(POSTGRESQL_FILL), {"low": low, "high": low + BATCH})
        low += BATCH
        log.info(
            "search pairs: documents up to id %d of %d (%.0f s)",
            min(low, last),
            last,
            time.monotonic() - started,
        )
    op.execute(
        "CREATE INDEX ix_search_pairs_pairs ON search_pairs USING gin (pairs)"
        f" WITH (gin_pending_list_limit = {PENDING_LIST_KB})"
    )
    # Statistics now rather than at autovacuum's next visit (searches do not rely on them).
    op.execute("ANALYZE search_pairs")
    log.info("search pairs: index built (%.0f s)", time.monotonic() - started)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("search_pairs")
        op.execute("ALTER INDEX ix_search_documents_body RESET (gin_pending_list_limit)")

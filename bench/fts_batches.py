"""What SQLite's FTS5 index costs per document, by transaction size.

Inserts documents of 12 words into a table with an external-content FTS5 index kept by a
trigger (the shape of ``search_documents`` / ``search_fts``), on top of a prefilled index, in
transactions of 1, 4, 16 and 256 documents, and the same without the index. The difference is
what indexing adds to each send at that batch size (docs/benchmarks.md, T6).

    .venv/bin/python -m bench.fts_batches [--prefill 100000] [--documents 20000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path


def _documents(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(3, 8)))
        for _ in range(20_000)
    ]
    return [" ".join(rng.choices(words, k=12)) for _ in range(count)]


def run(batch: int, documents: list[str], prefill: int, *, indexed: bool) -> float:
    """Microseconds per document, for ``len(documents) - prefill`` documents."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "fts.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)")
        if indexed:
            conn.execute(
                "CREATE VIRTUAL TABLE fts USING fts5(body, content='docs', "
                "content_rowid='id', tokenize='ascii')"
            )
            conn.execute(
                "CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN "
                "INSERT INTO fts(rowid, body) VALUES (new.id, new.body); END"
            )
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO docs VALUES (?, ?)", enumerate(documents[:prefill], 1))
        conn.execute("COMMIT")
        started = time.perf_counter()
        for start in range(prefill, len(documents), batch):
            rows = [(i + 1, documents[i]) for i in range(start, min(start + batch, len(documents)))]
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO docs VALUES (?, ?)", rows)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
    return elapsed / (len(documents) - prefill) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefill", type=int, default=100_000, help="documents indexed first")
    parser.add_argument("--documents", type=int, default=20_000, help="documents timed")
    args = parser.parse_args()
    documents = _documents(args.prefill + args.documents)
    print("batch  plain table  with FTS5  FTS5's share (µs per document)")
    for batch in (1, 4, 16, 256):
        plain = run(batch, documents, args.prefill, indexed=False)
        indexed = run(batch, documents, args.prefill, indexed=True)
        print(f"{batch:5d}  {plain:11.1f}  {indexed:9.1f}  {indexed - plain:12.1f}")


if __name__ == "__main__":
    main()

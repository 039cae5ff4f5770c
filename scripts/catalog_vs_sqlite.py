#!/usr/bin/env python3
"""SQLite as the records store, measured the way `podseek bench scale` measures the catalog.

Issue #12 asked for the records store to be chosen by measured open time and RSS. This builds a
SQLite database holding what `catalog.bin` holds for N chunks (each chunk's chapter and its JSON
record, about 930 bytes as in the sample index: 70 words of real text twice, as `text` and
`embed_text`; each chapter's heading), drops it from the page cache, and then, in a
fresh process: opens it, and reads 10 hits' records (chunk and chapter, then the chapter's
heading) for 500 questions, twice, reporting the second pass as `bench scale` does. Python's
sqlite3 adds a few microseconds per statement; the C library would be a little faster.

usage: python3 scripts/catalog_vs_sqlite.py build DB N TEXT_FILE
       python3 scripts/catalog_vs_sqlite.py serve DB N
"""
import json
import os
import random
import sqlite3
import statistics
import sys
import time

CHUNKS_PER_CHAPTER = 5


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def build(db, n, text_file):
    words = open(text_file, encoding="utf-8").read().split()
    if os.path.exists(db):
        os.remove(db)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("CREATE TABLE chunks (key INTEGER PRIMARY KEY, chapter TEXT, record BLOB)")
    con.execute("CREATE TABLE chapters (id TEXT PRIMARY KEY, episode TEXT, lang INTEGER, heading BLOB) WITHOUT ROWID")
    rng = random.Random(7)
    started = time.time()
    chunk_rows, chapter_rows = [], []
    for i in range(n):
        chapter = f"syn-{i // 50}~{(i % 50) // CHUNKS_PER_CHAPTER}"
        at = rng.randrange(0, len(words) - 80)
        text = " ".join(words[at:at + 70])
        record = json.dumps({"id": f"{chapter}/t{i % 50}", "key": i, "chapter_id": chapter,
                             "episode_id": f"syn-{i // 50}", "kind": "transcript",
                             "text": text, "embed_text": text})
        chunk_rows.append((i, chapter, record))
        if i % CHUNKS_PER_CHAPTER == 0:
            heading = json.dumps({"episode": {"id": f"syn-{i // 50}", "title": " ".join(words[at:at + 6])},
                                  "chapter": {"id": chapter, "title": " ".join(words[at + 6:at + 14])}})
            chapter_rows.append((chapter, f"syn-{i // 50}", 0, heading))
        if len(chunk_rows) == 50_000:
            con.executemany("INSERT INTO chunks VALUES (?, ?, ?)", chunk_rows)
            con.executemany("INSERT INTO chapters VALUES (?, ?, ?, ?)", chapter_rows)
            chunk_rows, chapter_rows = [], []
    con.executemany("INSERT INTO chunks VALUES (?, ?, ?)", chunk_rows)
    con.executemany("INSERT INTO chapters VALUES (?, ?, ?, ?)", chapter_rows)
    con.commit()
    con.close()
    print(f"built {n} chunks in {time.time() - started:.1f} s, {os.path.getsize(db) / 1e6:.0f} MB")
    fd = os.open(db, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def serve(db, n):
    before = rss_mb()
    started = time.time()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.execute("SELECT key FROM chunks WHERE key = 0").fetchone()
    open_ms = (time.time() - started) * 1000
    rss_open = rss_mb() - before
    rng = random.Random(11)
    questions = [[rng.randrange(n) for _ in range(10)] for _ in range(500)]

    def read(keys):
        for key in keys:
            chapter, _ = con.execute("SELECT chapter, record FROM chunks WHERE key = ?", (key,)).fetchone()
            con.execute("SELECT heading FROM chapters WHERE id = ?", (chapter,)).fetchone()

    passes = []
    for _ in range(2):
        times = []
        for keys in questions:
            t = time.perf_counter()
            read(keys)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        passes.append((statistics.median(times), times[int(0.99 * (len(times) - 1))]))
    (cold50, cold99), (p50, p99) = passes
    print(f"open {open_ms:.1f} ms, RSS after open +{rss_open:.0f} MB, after the questions +{rss_mb() - before:.0f} MB")
    print(f"10 hits' records: first pass p50 {cold50:.3f} / p99 {cold99:.3f} ms; second pass p50 {p50:.3f} / p99 {p99:.3f} ms")


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        serve(sys.argv[2], int(sys.argv[3]))

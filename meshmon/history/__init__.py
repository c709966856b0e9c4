"""The history of every node and link in the collector's SQLite file: raw samples for 48 h,
5-minute min/mean/max for 30 days, hourly for a year (docs/history.md).

    samples.py   a report → one sample per series (counters become rates)
    codec.py     columns of numbers ↔ compact bytes
    chunks.py    raw buckets, roll-up chunks, the roll-up arithmetic
    tables.py    the SQLite tables: registries, writes, reads, pruning
    recorder.py  the SQLite store's history side: open buckets, batch writes
    query.py     what a request asks for, and the answer
    export.py    an answer as CSV
    legacy.py    samples of older collectors moved into the history tables
"""

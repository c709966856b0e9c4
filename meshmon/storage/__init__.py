"""The collector's one SQLite file, whoever writes it: the schema version and its migrations
(`migrations`), opening a connection that is checked and migrated and a worker thread to use
it from (`database`), the maintainer sessions kept in it (`sessions`), and the SQLite
store's worker (`store_worker`: history and state, in a process of its own).

`SqliteStore` (sinks) and `AlertStore` (alerts) keep their own tables in the same file; each
opens it through `database.open_database`, so the file is migrated before either uses it.
"""

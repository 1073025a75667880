"""The Iceberg cold tier: the archiver (log -> Iceberg, exactly once), maintenance and cold queries.

Importing this package is cheap; pyiceberg, pyarrow and DuckDB load only in the modules that need
them (`schema`, `convert`, `catalog`, `archiver`, `maintenance`, `query`), which the edge process
never imports except for `cold_query`, which runs in a worker thread.
"""

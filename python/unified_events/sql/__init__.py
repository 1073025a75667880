"""SQL over the hot tier: validate.py (what may run), pushdown.py (index use), engine.py (DuckDB over
Arrow snapshots of the Rust ring), live.py (live queries over WebSocket)."""

"""Collect: incremental, exactly-once ingestion of raw sources into bronze and silver."""

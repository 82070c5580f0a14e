"""Names of the tables the collect step keeps about its own work.

They live here, not in the module that writes each one, because several modules read them:
bronze writes the file ledger and the landing audit (``file_changes``) reads it, and bronze
records the files its batch could not read in the audit's table. Their schemas, constraints
and layouts are in ``crossdata.lakehouse.tables``.
"""

from __future__ import annotations

QUARANTINE = "bronze.quarantine"
"""Every record that could not be loaded, with its raw text and a reason code."""

RECONCILIATION = "ops.ingest_reconciliation"
"""The file ledger: per landing file and run, read = loaded + quarantined + duplicate copies."""

FILE_CHANGES = "ops.ingest_file_changes"
"""Landing files rewritten after they were read, or gone before their batch read them."""

QUALITY = "ops.data_quality"
"""Per run, table and rule: rows that passed and failed the configured expectations."""

SILVER_BATCHES = "ops.silver_batches"
"""Per run, silver table and micro-batch: rows in, inserted, updated, duplicates, removed."""

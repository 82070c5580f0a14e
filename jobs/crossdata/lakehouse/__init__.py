"""Tables by name: ``Lakehouse`` reads and writes them, ``tables`` declares them."""

from crossdata.lakehouse.store import Lakehouse, is_conflict
from crossdata.lakehouse.tables import TABLES, Table, table

__all__ = ["TABLES", "Lakehouse", "Table", "is_conflict", "table"]

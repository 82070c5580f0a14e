"""Tables by name: ``Lakehouse`` reads and writes them, ``tables`` declares them."""

from crossdata.lakehouse.store import Lakehouse, LakeLocation, is_conflict
from crossdata.lakehouse.tables import TABLES, Table, table

__all__ = ["TABLES", "LakeLocation", "Lakehouse", "Table", "is_conflict", "table"]

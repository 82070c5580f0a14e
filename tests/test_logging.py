"""No personal data in what a failing job prints: crossdata's error and the JVM's own log.

A row that breaks a Delta CHECK constraint makes Delta list the row's values, and Spark logs
that error several times on stderr. The job runs in a fresh process here, so the JVM starts
with the logging crossdata gives the sessions it builds, and its whole stderr is checked.
"""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO

_SCRIPT = """
import sys
from pathlib import Path

from crossdata.errors import InvariantViolation
from crossdata.lakehouse import Lakehouse
from crossdata.lakehouse.tables import TABLES, Table
from crossdata.spark import get_spark
from tests.conftest import make_settings

TABLES["silver.test_contacts"] = Table(
    "silver.test_contacts",
    "test table",
    "append",
    constraints={"lower_case": "email = lower(email)"},
)
spark = get_spark(make_settings(Path(sys.argv[1])).settings)
lake = Lakehouse(spark, sys.argv[1] + "/lakehouse")
rows = lambda email: spark.createDataFrame([(email,)], "email STRING")
lake.append(rows("ann@example.org"), "silver.test_contacts")
try:
    lake.append(rows("Zoe.Secret@Example.org\\nSecret, second line"), "silver.test_contacts")
except InvariantViolation as exc:
    print("refused:", exc)
"""


def test_a_broken_constraint_is_reported_without_the_rows_values(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith(
        "refused: table silver.test_contacts: a row breaks CHECK constraint lower_case "
    )
    # Spark logged the failed task, with Delta's message, and the values were replaced
    assert "violated by row with values: [withheld by crossdata: personal data]" in out.stderr
    assert "secret" not in (out.stdout + out.stderr).lower()

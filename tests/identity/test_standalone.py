"""``crossdata identity resolve --edges FILE.csv --out DIR``: the exact interface, end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from crossdata.cli import main

EDGES = """src_type,src_value,dst_type,dst_value,ts,source
cookie_id,ck-1,user_id,u-anna,2026-03-01T10:00:00Z,login
user_id,u-anna,email,  Anna.B@Example.ORG ,2026-03-01T10:05:00Z,crm
email,anna.b@example.org,phone,06 12 34 56 78,,crm
device_id,kiosk,user_id,u-anna,,
device_id,kiosk,user_id,u-ben,,
device_id,kiosk,user_id,u-carl,,
cookie_id,ck-2,user_id,u-ben,,
cookie_id,undefined,user_id,u-ben,,
cookie_id,undefined,user_id,u-carl,,
fax,123,user_id,u-ben,,
cookie_id,,user_id,u-ben,,
cookie_id,ck-3,user_id,u-carl,yesterday,
cookie_id,"ck-4,user_id
device_id,dev\x01ice,user_id,u-ben,,
"""


@pytest.fixture(scope="module")
def resolved(spark, loaded, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("standalone")
    edges = folder / "edges.csv"
    edges.write_text(EDGES, encoding="utf-8")
    out = folder / "out"
    code = main(
        [
            "--set",
            f"lakehouse.root={loaded.settings.lakehouse.root}",
            "--set",
            "spark.shuffle_partitions=2",
            "identity",
            "resolve",
            "--edges",
            str(edges),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_identities_csv_has_the_exact_columns_and_one_customer_per_person(resolved) -> None:
    header, rows = read(resolved / "identities.csv")
    assert header == ["id_type", "id_value", "customer_id"]
    key = {(r["id_type"], r["id_value"]): r["customer_id"] for r in rows}
    assert len(key) == len(rows)
    anna = key[("user_id", "u-anna")]
    assert anna
    # Normalised like the lakehouse job: email trimmed and lower-cased, phone to E.164.
    assert key[("email", "anna.b@example.org")] == anna
    assert key[("phone", "+33612345678")] == anna
    assert key[("cookie_id", "ck-1")] == anna
    assert key[("cookie_id", "ck-2")] == key[("user_id", "u-ben")] != anna
    assert key[("user_id", "u-carl")] not in {anna, key[("user_id", "u-ben")]}
    # The kiosk (three user_ids) is shared: listed, with no customer.
    assert key[("device_id", "kiosk")] == ""
    assert ("cookie_id", "undefined") not in key


def test_rejected_edges_say_why(resolved) -> None:
    header, rows = read(resolved / "rejected_edges.csv")
    assert header == ["line", "reason", "raw"]
    reasons = {int(r["line"]): r["reason"] for r in rows}
    assert reasons == {
        9: "placeholder",
        10: "placeholder",
        11: "unknown_id_type",
        12: "missing_value",
        13: "invalid_timestamp",
        14: "malformed_record",
        15: "invalid_value",  # a control character: no identifier holds one
    }


def test_every_row_is_accounted_for(resolved) -> None:
    _, rejected = read(resolved / "rejected_edges.csv")
    _, identities = read(resolved / "identities.csv")
    data_rows = EDGES.strip().count("\n")  # lines after the header
    used = data_rows - len(rejected)
    # ck-1, u-anna, the email, the phone, kiosk, u-ben, u-carl, ck-2
    assert used == 7 and len(identities) == 8


def test_edges_and_out_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["identity", "resolve", "--edges", "x.csv"]) != 0
    assert "--edges and --out go together" in capsys.readouterr().err

"""Evidence aggregated once: the identifiers' first and last sightings come from the aggregate,
not from a second read of the raw rows."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from crossdata.identity.graph import (
    aggregate_evidence,
    aggregate_nodes,
    endpoint_observations,
    without_loops,
)

T0 = dt.datetime(2026, 3, 2, 9, 0)
RAW = (
    "src_type string, src_value string, dst_type string, dst_value string, source string, "
    "ts timestamp"
)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def test_first_and_last_seen_from_the_aggregate_are_those_of_the_raw_rows(
    spark: SparkSession,
) -> None:
    raw = spark.createDataFrame(
        [
            ("cookie_id", "c1", "email", "e1", "web", at(1)),
            ("email", "e1", "cookie_id", "c1", "web", at(5)),  # the same pair, turned round
            ("cookie_id", "c1", "email", "e1", "web", None),  # a sighting without a time
            ("cookie_id", "c1", "email", "e1", "order", at(7)),  # another source
            ("email", "e1", "user_id", "u1", "login", at(3)),
            # c2 is only ever seen paired with itself: no edge, but still an identifier seen at 9.
            ("cookie_id", "c2", "cookie_id", "c2", "web", at(9)),
        ],
        RAW,
    )
    pairs = aggregate_evidence(raw, loops=True)

    nodes = {
        (r["id_type"], r["id_value"]): (r["first_seen"], r["last_seen"])
        for r in aggregate_nodes(endpoint_observations(pairs)).collect()
    }
    assert nodes == {
        ("cookie_id", "c1"): (at(1), at(7)),
        ("email", "e1"): (at(1), at(7)),
        ("user_id", "u1"): (at(3), at(3)),
        ("cookie_id", "c2"): (at(9), at(9)),
    }

    edges = {
        (r["src_value"], r["dst_value"], r["source"]): (r["first_seen"], r["last_seen"], r["count"])
        for r in without_loops(pairs).collect()
    }
    assert edges == {
        ("c1", "e1", "web"): (at(1), at(5), 3),
        ("c1", "e1", "order"): (at(7), at(7), 1),
        ("e1", "u1", "login"): (at(3), at(3), 1),
    }
    # What the edges alone give (no pair of an identifier with itself) is the same.
    assert sorted(without_loops(pairs).collect()) == sorted(aggregate_evidence(raw).collect())


def test_golden_latest_value_does_not_follow_the_rows_order(spark: SparkSession) -> None:
    # Two emails last seen at one time (a CRM load stamps every row alike): the profile's
    # email must be the same whichever row Spark meets first.
    from crossdata.identity.golden import golden_records

    t = dt.datetime(2026, 3, 2, 9, 0)
    rows = [
        ("email", "a@example.org", "cx_1", t, t),
        ("email", "b@example.org", "cx_1", t, t),
        ("user_id", "u1", "cx_1", t, t),
    ]
    schema = (
        "id_type STRING, id_value STRING, customer_id STRING, first_seen TIMESTAMP, "
        "last_seen TIMESTAMP"
    )
    chosen = {
        golden_records(spark.createDataFrame(order, schema).coalesce(1), None, {}).first()["email"]
        for order in (rows, rows[::-1])
    }
    assert chosen == {"b@example.org"}

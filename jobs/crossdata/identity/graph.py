"""The identity graph: identifiers as typed nodes, co-occurrences as evidence edges.

Pure transforms from silver tables to ``(id_type, id_value)`` observations and to undirected
evidence edges, the guardrails that decide which edges may merge people, and the dictionary
that gives every identifier a permanent long id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crossdata.collect.identifiers import full_match, is_placeholder
from crossdata.config.schema import CollectSettings, IdentitySettings
from crossdata.contracts import IDENTIFIER_TYPES
from crossdata.identity.linkage import (
    date_similarity,
    household_veto,
    name_key,
    name_similarity,
    same_or_swapped,
)

# An evidence row: two identifiers seen together, by what, when.
EVIDENCE_COLUMNS = ("src_type", "src_value", "dst_type", "dst_value", "source", "ts")
# A node observation: one identifier, when it was seen.
NODE_COLUMNS = ("id_type", "id_value", "ts")

# Identifier types from the most stable to the least: each edge of a record runs from the
# more stable of its two ends.
ANCHOR_ORDER = (
    "customer_number",
    "user_id",
    "loyalty_card",
    "email",
    "phone",
    "device_id",
    "cookie_id",
)


def _ident(type_: str, value: Column) -> Column:
    return F.struct(F.lit(type_).alias("t"), value.cast("string").alias("v"))


# (value, identifier type) -> whether the identifier may link anyone (see ``blocked``).
Usable = Callable[[Column, Column], Column]


def record_evidence(
    records: DataFrame,
    columns: Mapping[str, str],
    source: str,
    ts: str,
    usable: Usable | None = None,
) -> DataFrame:
    """Each record's identifiers, linked pairwise: every two identifiers one record carries
    are an edge. A star around one of them would be fewer edges, but when its centre turns out
    shared (a shop's email typed on strangers' guest orders) the record's other identifiers
    would lose their link to each other; records hold a handful of identifiers, so the pairs
    stay few. ``columns`` maps a column to its identifier type; identifiers that are not
    ``usable`` (placeholders, the blocklist) are left out. Each pair is written from the more
    stable identifier (``ANCHOR_ORDER``) to the other.
    """
    order = sorted(columns.items(), key=lambda kv: ANCHOR_ORDER.index(kv[1]))
    idents = F.filter(
        F.array(*[_ident(t, F.col(c)) for c, t in order]),
        lambda x: x["v"].isNotNull() & (usable(x["v"], x["t"]) if usable else F.lit(True)),
    )
    with_ids = records.select(idents.alias("_ids"), F.col(ts).alias("ts")).where(
        F.size("_ids") >= 2
    )
    firsts = with_ids.select(F.posexplode("_ids").alias("_i", "_a"), "_ids", "ts")
    pairs = firsts.select("_i", "_a", F.posexplode("_ids").alias("_j", "_b"), "ts").where(
        F.col("_j") > F.col("_i")
    )
    return pairs.select(
        F.col("_a.t").alias("src_type"),
        F.col("_a.v").alias("src_value"),
        F.col("_b.t").alias("dst_type"),
        F.col("_b.v").alias("dst_value"),
        F.lit(source).alias("source"),
        "ts",
    )


def record_nodes(records: DataFrame, columns: Mapping[str, str], ts: str) -> DataFrame:
    """Every identifier a record carries, as node observations."""
    idents = F.filter(
        F.array(*[_ident(t, F.col(c)) for c, t in columns.items()]), lambda x: x["v"].isNotNull()
    )
    return records.select(F.explode(idents).alias("_i"), F.col(ts).alias("ts")).select(
        F.col("_i.t").alias("id_type"), F.col("_i.v").alias("id_value"), "ts"
    )


def blocked(
    value: Column, id_type: Column, collect: CollectSettings, identity: IdentitySettings
) -> Column:
    """True for identifiers that must never link anyone: placeholders and the blocklist."""
    tests = []
    for t in IDENTIFIER_TYPES:
        patterns = [*identity.blocklist.get("*", ()), *identity.blocklist.get(t, ())]
        hit = is_placeholder(value, t, collect)
        if patterns:
            hit = hit | full_match(value, patterns)
        tests.append((id_type == t) & F.coalesce(hit, F.lit(False)))
    return reduce(lambda a, b: a | b, tests, F.lit(False)) | value.isNull() | (F.trim(value) == "")


def without_blocked(
    df: DataFrame,
    pairs: Sequence[tuple[str, str]],
    collect: CollectSettings,
    identity: IdentitySettings,
) -> DataFrame:
    """Drop rows where any (type column, value column) pair is a blocked identifier."""
    keep = F.lit(True)
    for type_col, value_col in pairs:
        keep = keep & ~blocked(F.col(value_col), F.col(type_col), collect, identity)
    return df.where(keep)


def aggregate_evidence(evidence: DataFrame, loops: bool = False) -> DataFrame:
    """Undirected, deduplicated evidence: one row per identifier pair and source, with when it
    was first and last seen and how often. A row pairing an identifier with itself links
    nothing and is left out, unless ``loops``: it still says when the identifier was seen
    (``endpoint_observations``)."""
    a = F.struct(F.col("src_type").alias("t"), F.col("src_value").alias("v"))
    b = F.struct(F.col("dst_type").alias("t"), F.col("dst_value").alias("v"))
    lo, hi = F.least(a, b), F.greatest(a, b)
    return (
        (evidence if loops else evidence.where(a != b))
        .select(lo.alias("_lo"), hi.alias("_hi"), "source", "ts")
        .groupBy("_lo", "_hi", "source")
        .agg(
            F.min("ts").alias("first_seen"),
            F.max("ts").alias("last_seen"),
            F.count(F.lit(1)).alias("count"),
        )
        .select(
            F.col("_lo.t").alias("src_type"),
            F.col("_lo.v").alias("src_value"),
            F.col("_hi.t").alias("dst_type"),
            F.col("_hi.v").alias("dst_value"),
            "source",
            "first_seen",
            "last_seen",
            "count",
        )
    )


def without_loops(aggregated: DataFrame) -> DataFrame:
    """``aggregate_evidence(..., loops=True)``'s rows that link two identifiers."""
    same = (F.col("src_type") == F.col("dst_type")) & (F.col("src_value") == F.col("dst_value"))
    return aggregated.where(~same)


def endpoint_observations(aggregated: DataFrame) -> DataFrame:
    """``(id_type, id_value, ts)``: both ends of aggregated evidence (``aggregate_evidence``), at
    their first and last sighting. Their earliest and latest are those of the raw rows, so the
    raw evidence need not be read again for the identifiers' first and last seen."""
    return reduce(
        DataFrame.unionByName,
        [
            aggregated.select(
                F.col(f"{end}_type").alias("id_type"),
                F.col(f"{end}_value").alias("id_value"),
                F.col(seen).alias("ts"),
            )
            for end in ("src", "dst")
            for seen in ("first_seen", "last_seen")
        ],
    )


def aggregate_nodes(observations: DataFrame) -> DataFrame:
    """One row per identifier with first and last seen."""
    return observations.groupBy("id_type", "id_value").agg(
        F.min("ts").alias("first_seen"), F.max("ts").alias("last_seen")
    )


def new_identifiers(nodes: DataFrame, dictionary: DataFrame | None) -> DataFrame:
    """Identifiers not in the dictionary yet, with fresh node ids above the current maximum.

    Ids are unique (``monotonically_increasing_id`` over one DataFrame), not dense; they are
    written once and then only ever read, which is what makes them permanent.
    """
    if dictionary is None:
        fresh, base = nodes, F.lit(0).cast("bigint")
    else:
        fresh = nodes.join(
            dictionary.select("id_type", "id_value"), ["id_type", "id_value"], "left_anti"
        )
        base = F.lit(dictionary.agg(F.max("node_id")).collect()[0][0] or 0).cast("bigint") + 1
    return fresh.select(
        "id_type",
        "id_value",
        (base + F.monotonically_increasing_id()).alias("node_id"),
        "first_seen",
        "last_seen",
    )


def with_node_ids(edges: DataFrame, dictionary: DataFrame) -> DataFrame:
    """Evidence edges with both ends' node ids, oriented so that src_id < dst_id."""
    d = dictionary.select("id_type", "id_value", "node_id")
    src = d.select(
        F.col("id_type").alias("src_type"),
        F.col("id_value").alias("src_value"),
        F.col("node_id").alias("_s"),
    )
    dst = d.select(
        F.col("id_type").alias("dst_type"),
        F.col("id_value").alias("dst_value"),
        F.col("node_id").alias("_d"),
    )
    joined = edges.join(src, ["src_type", "src_value"]).join(dst, ["dst_type", "dst_value"])
    swap = F.col("_s") > F.col("_d")

    def pick(when_swap: str, otherwise: str) -> Column:
        return F.when(swap, F.col(when_swap)).otherwise(F.col(otherwise))

    return joined.select(
        F.least("_s", "_d").alias("src_id"),
        F.greatest("_s", "_d").alias("dst_id"),
        pick("dst_type", "src_type").alias("src_type"),
        pick("dst_value", "src_value").alias("src_value"),
        pick("src_type", "dst_type").alias("dst_type"),
        pick("src_value", "dst_value").alias("dst_value"),
        "source",
        "first_seen",
        "last_seen",
        "count",
    )


def neighbours(edges: DataFrame) -> DataFrame:
    """Each edge seen from both ends: ``(node_id, id_type, nbr_id, nbr_type)``."""
    return edges.select(
        F.col("src_id").alias("node_id"),
        F.col("src_type").alias("id_type"),
        F.col("dst_id").alias("nbr_id"),
        F.col("dst_type").alias("nbr_type"),
    ).unionByName(
        edges.select(
            F.col("dst_id").alias("node_id"),
            F.col("dst_type").alias("id_type"),
            F.col("src_id").alias("nbr_id"),
            F.col("src_type").alias("nbr_type"),
        )
    )


def shared_nodes(edges: DataFrame, limits: Mapping[str, Mapping[str, int]]) -> DataFrame:
    """Nodes linked to more distinct neighbours of a type than ``shared_limits`` allows.

    Returns ``(node_id, id_type, reason)``; e.g. a kiosk device seen with 300 user_ids. Such a
    node keeps its edges as evidence but merges nobody.
    """
    both = neighbours(edges)
    checks = [
        (node_type, nbr_type, limit)
        for node_type, per in limits.items()
        for nbr_type, limit in per.items()
    ]
    if not checks:
        return edges.sparkSession.createDataFrame(
            [], "node_id BIGINT, id_type STRING, reason STRING"
        )
    limit_rows = edges.sparkSession.createDataFrame(
        checks, "id_type STRING, nbr_type STRING, max_links INT"
    )
    counts = (
        both.join(F.broadcast(limit_rows), ["id_type", "nbr_type"])
        .groupBy("node_id", "id_type", "nbr_type", "max_links")
        .agg(F.countDistinct("nbr_id").alias("links"))
        .where(F.col("links") > F.col("max_links"))
    )
    first = Window.partitionBy("node_id").orderBy(F.col("links").desc(), "nbr_type")
    return (
        counts.withColumn("_r", F.row_number().over(first))
        .where("_r = 1")
        .select(
            "node_id",
            "id_type",
            F.concat(
                F.lit("linked to "),
                F.col("links").cast("string"),
                F.lit(" "),
                F.col("nbr_type"),
                F.lit(" (max "),
                F.col("max_links").cast("string"),
                F.lit(")"),
            ).alias("reason"),
        )
    )


def mark_merging(edges: DataFrame, shared: DataFrame) -> DataFrame:
    """``merges`` is false for edges that touch a shared node."""
    s = shared.select("node_id").withColumn("_shared", F.lit(True))
    return (
        edges.join(
            s.withColumnRenamed("node_id", "src_id").withColumnRenamed("_shared", "_s1"),
            "src_id",
            "left",
        )
        .join(
            s.withColumnRenamed("node_id", "dst_id").withColumnRenamed("_shared", "_s2"),
            "dst_id",
            "left",
        )
        .withColumn("merges", F.col("_s1").isNull() & F.col("_s2").isNull())
        .drop("_s1", "_s2")
    )


def bridging_identifiers(
    edges: DataFrame, anchors: DataFrame, bridge_types: Sequence[str]
) -> DataFrame:
    """Browsers and devices that alone join different people's accounts: ``(node_id, id_type,
    reason)``.

    ``edges`` are the merging edges; ``anchors`` (``node_id, component``) groups the
    person-level identifiers (every type not in ``bridge_types``) by the merging edges between
    them, so each group is what an account, an order or a CRM record ties together. A node of
    ``bridge_types`` directly linked to identifiers of two or more groups is the only thing
    joining them: a family tablet on which one parent logs in and the other places an order
    with their own email. Such a node is shared. Identifiers no anchor edge reaches form a group
    of their own.
    """
    both = neighbours(edges)
    kinds = list(bridge_types)
    groups = anchors.select(F.col("node_id").alias("nbr_id"), F.col("component"))
    return (
        both.where(F.col("id_type").isin(kinds) & ~F.col("nbr_type").isin(kinds))
        .join(groups, "nbr_id", "left")
        .withColumn("group", F.coalesce(F.col("component"), F.col("nbr_id")))
        .groupBy("node_id", "id_type")
        .agg(
            F.countDistinct("group").alias("groups"),
            F.array_sort(F.collect_set("nbr_type")).alias("types"),
        )
        .where(F.col("groups") > 1)
        .select(
            "node_id",
            "id_type",
            F.concat(
                F.lit("the only link between "),
                F.col("groups").cast("string"),
                F.lit(" people's identifiers ("),
                F.array_join("types", ", "),
                F.lit(")"),
            ).alias("reason"),
        )
    )


def _first_name(col: Column) -> Column:
    # A spreadsheet formula injected into the name field (silver keeps and flags it) is no
    # name: it must not make two records of one person look like two people.
    return F.when(~F.trim(col).rlike(r"^[=+@-]"), name_key(col))


def household_identifiers(holders: DataFrame) -> DataFrame:
    """Contact points the CRM shows in the hands of different people: ``(node_id, id_type,
    reason)``, from ``crm_holders``' output.

    An email, phone or card on two CRM records is a household's, not a person's (a family
    email on both parents' loyalty accounts), and so shared, when the two records disagree on
    who they are, by the rule probabilistic linkage vetoes a pair with
    (``linkage.household_veto``): their first names are unrelated, or their birth dates differ,
    or not both birth dates are known and the first names are not close (Margaux and María on
    a family email, neither birth date given, are two people far more often than one).

    A record often lacks a birth date, so each side also brings the birth dates of the CRM
    records under the same first name it shares another contact point with (its owner's
    other accounts: the same mobile on the store and web records), the other side's record
    excepted. The sides' birth dates differ when both know one and none of one side's matches
    one of the other's.
    """
    a, b = holders.alias("a"), holders.alias("b")
    pairs = a.join(
        b,
        (F.col("a.node_id") == F.col("b.node_id"))
        & (F.col("a.customer_number") < F.col("b.customer_number")),
    ).select(
        F.col("a.node_id").alias("node_id"),
        F.col("a.id_type").alias("id_type"),
        F.col("a.customer_number").alias("rec_a"),
        F.col("b.customer_number").alias("rec_b"),
        _first_name_sim(F.col("a.first_name"), F.col("b.first_name")),
    )
    agree = F.col("births_agree")
    # In the similarity terms linkage's veto reads: 1 agree, 0 differ, NULL unknown (a missing
    # name or an unknown birth date is no evidence of two people).
    compared = pairs.join(_births_compared(pairs, holders), ["node_id", "rec_a", "rec_b"], "left")
    return (
        compared.withColumn("birth_date_sim", F.when(agree, 1.0).when(~agree, 0.0))
        .where(household_veto())
        .select("node_id", "id_type")
        .distinct()
        .select(
            "node_id",
            "id_type",
            F.lit("on CRM records of different people (a household's)").alias("reason"),
        )
    )


def _first_name_sim(a: Column, b: Column) -> Column:
    # NULL when a name is missing (name_similarity itself would say 0: unrelated).
    return F.when(a.isNotNull() & b.isNotNull(), name_similarity(a, b)).alias("first_name_sim")


def crm_holders(edges: DataFrame, crm: DataFrame) -> DataFrame:
    """``(node_id, id_type, customer_number, first_name, birth_date)``: the CRM records each
    contact point (email, phone, card) is on, by the ``crm_record`` evidence. Both the
    household rule and the conflict check read it: build it once and give it to both."""
    crm_links = edges.where(
        (F.col("source") == "crm_record")
        & ((F.col("src_type") == "customer_number") | (F.col("dst_type") == "customer_number"))
    )
    links = crm_links.select(
        F.when(F.col("src_type") == "customer_number", F.col("dst_id"))
        .otherwise(F.col("src_id"))
        .alias("node_id"),
        F.when(F.col("src_type") == "customer_number", F.col("dst_type"))
        .otherwise(F.col("src_type"))
        .alias("id_type"),
        F.when(F.col("src_type") == "customer_number", F.col("src_value"))
        .otherwise(F.col("dst_value"))
        .alias("customer_number"),
    ).where(F.col("id_type") != "customer_number")
    people = crm.select(
        F.upper(F.trim("customer_number")).alias("customer_number"),
        _first_name(F.col("first_name")).alias("first_name"),
        F.col("birth_date"),
    )
    return links.join(people, "customer_number")


CONFLICT_REASON = "joins contact points on CRM records of different people"


def conflicting_evidence(edges: DataFrame, holders: DataFrame) -> DataFrame:
    """Evidence rows ``(src_id, dst_id, source, reason)`` that put two people's contact points
    together: each end is on CRM records (``holders``, from ``crm_holders``), no record holds
    both ends, and every record of one end and every record of the other are two people by
    ``linkage.household_veto`` (their own names and birth dates). A guest order with the
    family email and Océane's mobile, when the email is on her son Nathan's record only: one
    of the two is a household's, and the order cannot say which, so it merges neither.
    """

    def ends_on(end: str, side: str) -> DataFrame:
        names = {
            "node_id": end,
            "customer_number": "rec",
            "first_name": "first",
            "birth_date": "birth",
        }
        return holders.select(
            *[F.col(c).alias(n if c == "node_id" else f"{n}_{side}") for c, n in names.items()]
        )

    ends = edges.where(F.col("source") != "crm_record").select("src_id", "dst_id", "source")
    judged = (
        ends.join(ends_on("src_id", "a"), "src_id")
        .join(ends_on("dst_id", "b"), "dst_id")
        .select(
            "src_id",
            "dst_id",
            "source",
            (F.col("rec_a") == F.col("rec_b")).alias("one_record"),
            _first_name_sim(F.col("first_a"), F.col("first_b")),
            F.when(
                F.col("birth_a").isNotNull() & F.col("birth_b").isNotNull(),
                date_similarity(F.col("birth_a"), F.col("birth_b")),
            ).alias("birth_date_sim"),
        )
        .withColumn("two_people", ~F.col("one_record") & household_veto())
    )
    return (
        judged.groupBy("src_id", "dst_id", "source")
        .agg(F.min("two_people").alias("all_two"))
        .where("all_two")
        .select("src_id", "dst_id", "source", F.lit(CONFLICT_REASON).alias("reason"))
    )


def _births_compared(pairs: DataFrame, holders: DataFrame) -> DataFrame:
    """``(node_id, rec_a, rec_b, births_agree)`` for the record pairs on one node whose sides
    both know a birth date, their own or their neighbouring records' (see
    ``household_identifiers``): whether any two of them agree (equal, or day and month
    swapped). ``holders`` is ``crm_holders``."""
    births = holders.where(F.col("birth_date").isNotNull())
    own = births.select(
        "customer_number",
        F.lit(None).cast("long").alias("via"),
        F.col("customer_number").alias("from_record"),
        "birth_date",
    )
    n1, n2 = holders.alias("n1"), births.alias("n2")
    # A neighbour counts only under the same first name: a household landline or email must
    # not lend the daughter ("Ana") her mother's ("Anaïs") birth date.
    near = n1.join(
        n2,
        (F.col("n1.node_id") == F.col("n2.node_id"))
        & (F.col("n1.customer_number") != F.col("n2.customer_number"))
        & (F.col("n1.first_name") == F.col("n2.first_name")),
    ).select(
        F.col("n1.customer_number").alias("customer_number"),
        F.col("n1.node_id").alias("via"),
        F.col("n2.customer_number").alias("from_record"),
        F.col("n2.birth_date").alias("birth_date"),
    )
    known = own.unionByName(near).distinct()
    keys = pairs.select("node_id", "rec_a", "rec_b")

    def side(record: str, other: str, name: str) -> DataFrame:
        k = known.select(
            F.col("customer_number").alias(record),
            F.col("via").alias(f"via_{name}"),
            F.col("from_record").alias(f"from_{name}"),
            F.col("birth_date").alias(f"birth_{name}"),
        )
        # Not through the node in question, and nothing the other side's record says.
        return keys.join(k, record).where(
            F.col(f"via_{name}").isNull()
            | ((F.col(f"via_{name}") != F.col("node_id")) & (F.col(f"from_{name}") != F.col(other)))
        )

    sides = side("rec_a", "rec_b", "a").join(
        side("rec_b", "rec_a", "b").select("node_id", "rec_a", "rec_b", "birth_b"),
        ["node_id", "rec_a", "rec_b"],
    )
    return sides.groupBy("node_id", "rec_a", "rec_b").agg(
        F.max(same_or_swapped(F.col("birth_a"), F.col("birth_b"))).alias("births_agree")
    )

"""Probabilistic linking of CRM records that share no key: blocking, field similarities, a score.

Three steps, each a pure transform:

1. **Blocking.** Each of ``settings.blocking_keys`` is a SQL expression evaluated on the record
   after ``normalized_records`` (compared columns lower-cased, accents stripped, punctuation
   removed; other columns as they came). Records that agree on a non-NULL key value form a block;
   every pair inside a block is a candidate, once however many keys it shares. Block sizes are
   counted first (a cheap aggregation); a block with more than ``max_block_size`` records is
   skipped, never exploded (it would be quadratic), and ``oversized_blocks`` lists those so the
   job can count and report them. Each kept block is gathered into one sorted array and paired
   in place, which costs one aggregation instead of a self-join.
2. **Field similarities** in [0, 1], Spark built-ins only: names by Levenshtein normalised by the
   longer length, raised to ``SOUNDEX_AGREEMENT`` when their Soundex codes agree, and compared
   crosswise when first and last name look swapped; address line and city by normalised
   Levenshtein; postal code by equality; birth date 1 when equal, ``DATE_TYPO`` when day and
   month are swapped or one digit of YYYYMMDD differs, else 0. A Levenshtein similarity below
   ``UNRELATED_BELOW`` counts as 0: unrelated names share a few letters by chance. A similarity
   is NULL when either side lacks the value.
3. **Score**: the weighted average of the similarities over the fields *both* records have, so a
   missing value counts neither for nor against; ``evidence`` is the share of the total weight
   that was compared.

Why a weighted average rather than Fellegi-Sunter log-odds: Fellegi-Sunter weights need each
field's m- and u-probabilities, which only an EM fit on the data at hand estimates well (an
iterative, action-heavy step that does not belong in a transform); with hand-set m/u they are a
weighted sum anyway. The average is bounded, exactly 1 for identical records, re-normalises
exactly over the fields present, and its threshold reads as "share of the comparable evidence
that agrees", which means the same thing on any data set. Its blind spot is the *amount* of
evidence (two records sharing only a surname average 1), so a pair whose compared fields carry
less than ``settings.min_evidence`` of the total weight never becomes an edge.

Weights (``WEIGHTS``, total 12): surname and birth date 3 each, the most discriminating
person-level fields; first name 2 (nicknames, initials); address line 2 (people move); postal
code and city 1 each (they repeat the address and a whole household shares them). Scores of
typical pairs, all other fields equal: one typo in a 7-letter surname 0.96; a wholly different
first name or address line 0.83; another birth date 0.75; moved house 0.67. Households, which
must not merge: a couple with one surname and address and different first names 0.58, or 0.78
without birth dates; twins at one address 0.83; parent and child sharing a first name 0.75 (1.0
without birth dates: the data cannot tell them apart). Hence a threshold of 0.85 merges only
near-certain pairs. On top of the score, ``household_veto`` refuses a pair whose first names
are unrelated or whose birth dates clearly differ, whatever else agrees: in CRM data those are
two people of one household far more often than one person mistyped. ``linkage_edges`` also
refuses namesakes at two homes (two house numbers or two streets, a birth date missing), whose
near-equal address lines would score as one. Where a pair lacks a birth date, both rules read
the birth dates the records' namesakes on a shared contact point lend them
(``known_birth_dates``); the score does not.

Input: one row per ``key`` (silver.crm_customers is) with the columns in ``COMPARED`` (names
and address parts as strings, ``birth_date`` a date; an invalid date is NULL upstream), and
optionally the ``CONTACT_POINTS`` columns (without them nothing is lent).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crossdata.config.schema import LinkageSettings
from crossdata.errors import InputContractError

# Field -> weight in the score (see the module docstring for the reasoning).
WEIGHTS: Mapping[str, float] = {
    "first_name": 2.0,
    "last_name": 3.0,
    "birth_date": 3.0,
    "address_line1": 2.0,
    "postal_code": 1.0,
    "city": 1.0,
}
COMPARED = tuple(WEIGHTS)
UNRELATED_BELOW = 0.5  # a normalised Levenshtein similarity below this counts as 0
SOUNDEX_AGREEMENT = 0.8  # a name that sounds the same is at least this similar
DATE_TYPO = 0.8  # day/month swapped, or one digit of YYYYMMDD mistyped
SOURCE = "probabilistic"

_DECOMPOSABLE = "àáâãäåāăąçćčďèéêëēėęěğìíîïīįñńňòóôõöōőŕřśšşťţùúûüūůűųýÿžźż"
# translate() maps one character to one: the base letter of each accented one (NFKD's first
# code point), plus the few letters Unicode does not decompose.
_ACCENTED = _DECOMPOSABLE + "øłđı"
_PLAIN = "".join(unicodedata.normalize("NFKD", c)[0] for c in _DECOMPOSABLE) + "oldi"


def _folded(col: Column) -> Column:
    return F.translate(F.lower(col.cast("string")), _ACCENTED, _PLAIN)


def _blank_to_null(col: Column) -> Column:
    return F.nullif(F.trim(col), F.lit(""))


def name_key(col: Column) -> Column:
    """A name as compared: lower case, letters only, accents off ("Jean-Pierre", "jean pierre"
    and "JEAN PIERRE" are one spelling, "María" is "maria"); NULL when nothing is left."""
    return _blank_to_null(F.regexp_replace(_folded(col), r"[^\p{L}]+", ""))


def _text(col: Column) -> Column:
    return _blank_to_null(F.regexp_replace(_folded(col), r"[^\p{L}\p{N}]+", " "))


def _code(col: Column) -> Column:
    return _blank_to_null(F.regexp_replace(_folded(col), r"[^\p{L}\p{N}]+", ""))


def validate_linkage_input(records: DataFrame, key: str) -> None:
    """Raise InputContractError when ``records`` lacks the key or a compared column."""
    missing = [c for c in (key, *COMPARED) if c not in records.columns]
    if missing:
        raise InputContractError(
            f"probabilistic linkage: records lack column(s) {', '.join(missing)}; "
            f"it needs {key} and {', '.join(COMPARED)}"
        )


def normalized_records(records: DataFrame, key: str = "customer_number") -> DataFrame:
    """``records`` with the compared columns normalised: lower case, no accents or punctuation."""
    validate_linkage_input(records, key)
    return records.withColumns(
        {
            "first_name": name_key(F.col("first_name")),
            "last_name": name_key(F.col("last_name")),
            "birth_date": F.col("birth_date").cast("date"),
            "address_line1": _text(F.col("address_line1")),
            "postal_code": _code(F.col("postal_code")),
            "city": _text(F.col("city")),
        }
    )


# -- blocking ------------------------------------------------------------------------------------
def _blocked(normalized: DataFrame, settings: LinkageSettings) -> DataFrame:
    """Each record once per non-NULL blocking key value: adds ``blocking_key, block_value``."""
    keys = F.array(
        *[
            F.struct(
                F.lit(expr).alias("blocking_key"),
                F.expr(expr).cast("string").alias("block_value"),
            )
            for expr in settings.blocking_keys
        ]
    )
    return (
        normalized.withColumn("_block", F.explode(keys))
        .select("*", "_block.blocking_key", "_block.block_value")
        .drop("_block")
        .where(F.col("block_value").isNotNull())
    )


def _block_sizes(blocked: DataFrame) -> DataFrame:
    # Records (rows; the input has one per key) per block. Partial counts per partition: a huge
    # block costs a few counters, never its rows in one task.
    return blocked.groupBy("blocking_key", "block_value").agg(F.count("*").alias("size"))


def oversized_blocks(
    records: DataFrame, settings: LinkageSettings, key: str = "customer_number"
) -> DataFrame:
    """``(blocking_key, block_value, size)`` of the blocks too large to pair (skipped)."""
    blocked = _blocked(normalized_records(records, key), settings)
    return _block_sizes(blocked).where(F.col("size") > settings.max_block_size)


def _pairs_within(members: Column) -> Column:
    """Every ``struct(l, r)`` of two members of a sorted array, ``l`` before ``r``."""
    return F.flatten(
        F.transform(
            members,
            lambda x, i: F.transform(
                F.slice(members, i + 2, F.size(members) - i - 1),
                lambda y: F.struct(x.alias("l"), y.alias("r")),
            ),
        )
    )


def _pairs(
    normalized: DataFrame, settings: LinkageSettings, key: str, payload: tuple[str, ...]
) -> DataFrame:
    """``left, right`` and the members' structs ``l``, ``r`` (``id`` and ``payload`` columns)."""
    blocked = _blocked(normalized, settings)
    too_big = _block_sizes(blocked).where(F.col("size") > settings.max_block_size)
    member = F.struct(F.col(key).alias("id"), *payload)
    # Only blocks known to be small are gathered into one array each, then paired in place:
    # one aggregation instead of a self-join.
    blocks = (
        blocked.join(
            F.broadcast(too_big.select("blocking_key", "block_value")),
            ["blocking_key", "block_value"],
            "left_anti",
        )
        .groupBy("blocking_key", "block_value")
        .agg(F.array_sort(F.collect_set(member)).alias("members"))
    )
    return (
        blocks.select(F.explode(_pairs_within(F.col("members"))).alias("p"))
        .select(F.col("p.l.id").alias("left"), F.col("p.r.id").alias("right"), "p.l", "p.r")
        .where(F.col("left") < F.col("right"))
        .dropDuplicates(["left", "right"])
    )


def candidate_pairs(
    records: DataFrame, settings: LinkageSettings, key: str = "customer_number"
) -> DataFrame:
    """``(left, right)``, left < right, once per pair agreeing on a blocking key of a kept block."""
    return _pairs(normalized_records(records, key), settings, key, ()).select("left", "right")


# -- similarities and score ----------------------------------------------------------------------
def _levenshtein_similarity(a: Column, b: Column) -> Column:
    similarity = F.lit(1.0) - F.levenshtein(a, b) / F.greatest(F.length(a), F.length(b))
    # Unrelated strings still share a few letters (0.2-0.4); counted as agreement, they would
    # let a household's shared surname and address outvote two different first names.
    return F.when(similarity >= UNRELATED_BELOW, similarity).otherwise(F.lit(0.0))


def name_similarity(a: Column, b: Column) -> Column:
    """0 for unrelated names, else how alike two ``name_key`` values are (1 when equal).

    Sounding alike raises a related spelling only: Soundex is an English code that groups
    many short French first names whose spellings share little (Julie and Joël are J400, Lina
    and Léon L500)."""
    spelling = _levenshtein_similarity(a, b)
    sounds_alike = F.when(F.soundex(a) == F.soundex(b), F.lit(SOUNDEX_AGREEMENT)).otherwise(0.0)
    return F.when(spelling > 0, F.greatest(spelling, sounds_alike)).otherwise(F.lit(0.0))


def _exact_similarity(a: Column, b: Column) -> Column:
    return F.when(a == b, F.lit(1.0)).otherwise(F.lit(0.0))


def same_or_swapped(a: Column, b: Column) -> Column:
    """Whether two dates are one, as written or with day and month swapped (03/04 for 04/03).
    The household rule reads only this; linkage also forgives a one-digit typo
    (``date_similarity``)."""
    swapped = (
        (F.year(a) == F.year(b)) & (F.month(a) == F.dayofmonth(b)) & (F.dayofmonth(a) == F.month(b))
    )
    return (a == b) | swapped


def date_similarity(a: Column, b: Column) -> Column:
    one_digit = F.levenshtein(F.date_format(a, "yyyyMMdd"), F.date_format(b, "yyyyMMdd")) == 1
    return (
        F.when(a == b, F.lit(1.0))
        .when(same_or_swapped(a, b) | one_digit, F.lit(DATE_TYPO))
        .otherwise(F.lit(0.0))
    )


_SIMILARITY: Mapping[str, Callable[[Column, Column], Column]] = {
    "first_name": name_similarity,
    "last_name": name_similarity,
    "birth_date": date_similarity,
    "address_line1": _levenshtein_similarity,
    "postal_code": _exact_similarity,
    "city": _levenshtein_similarity,
}


def with_field_similarities(both: DataFrame) -> DataFrame:
    """Add ``<field>_sim`` for each compared field of structs ``l`` and ``r``; NULL if missing."""
    return both.withColumns(
        {
            f"{field}_sim": F.when(
                F.col(f"l.{field}").isNotNull() & F.col(f"r.{field}").isNotNull(),
                _SIMILARITY[field](F.col(f"l.{field}"), F.col(f"r.{field}")).cast("double"),
            )
            for field in COMPARED
        }
    )


def with_swapped_names(similarities: DataFrame) -> DataFrame:
    """Compare first with last name across the pair when that agrees better (a swapped entry)."""
    crossed_first = name_similarity(F.col("l.first_name"), F.col("r.last_name"))
    crossed_last = name_similarity(F.col("l.last_name"), F.col("r.first_name"))
    swapped = crossed_first + crossed_last > F.col("first_name_sim") + F.col("last_name_sim")
    # NULL when a name is missing: then nothing is swapped.
    return similarities.withColumns(
        {
            "first_name_sim": F.when(swapped, crossed_first).otherwise(F.col("first_name_sim")),
            "last_name_sim": F.when(swapped, crossed_last).otherwise(F.col("last_name_sim")),
        }
    )


def with_score(similarities: DataFrame) -> DataFrame:
    """Add ``score`` (weighted mean over the fields both sides have) and ``evidence`` (0..1)."""
    total = sum(WEIGHTS.values())
    agreed = reduce(
        Column.__add__,
        [F.coalesce(F.col(f"{f}_sim"), F.lit(0.0)) * w for f, w in WEIGHTS.items()],
    )
    compared = reduce(
        Column.__add__,
        [
            F.when(F.col(f"{f}_sim").isNotNull(), F.lit(w)).otherwise(0.0)
            for f, w in WEIGHTS.items()
        ],
    )
    return similarities.withColumns(
        {
            "score": F.when(compared > 0, agreed / compared),
            "evidence": compared / F.lit(total),
        }
    )


def score_pairs(pairs: DataFrame, keep: tuple[str, ...] = ()) -> DataFrame:
    """``left, right, <field>_sim..., score, evidence`` (and the ``keep`` columns) of pairs of
    normalised structs ``l, r``."""
    return (
        pairs.transform(with_field_similarities)
        .transform(with_swapped_names)
        .transform(with_score)
        .select("left", "right", *[f"{f}_sim" for f in COMPARED], "score", "evidence", *keep)
    )


def scored_pairs(
    records: DataFrame, settings: LinkageSettings, key: str = "customer_number"
) -> DataFrame:
    """``left, right, <field>_sim..., score, evidence`` for every candidate pair of ``records``."""
    return _pairs(normalized_records(records, key), settings, key, COMPARED).transform(score_pairs)


CLOSE_FIRST_NAME = 0.8  # without two birth dates, first names must be at least this alike


def household_veto() -> Column:
    """True for pairs that look like two people of one household, whatever else agrees.

    Two members of a household share surname, address, postal code and city, so they score
    high; what tells them apart is the first name and the birth date. A pair is refused when
    its first names are unrelated, when its birth dates clearly differ, or when a birth date is
    missing and the first names are not close (Ana and Anaïs at one address are two people
    as often as one).
    """
    first, birth = F.col("first_name_sim"), F.col("birth_date_sim")
    return (
        F.coalesce(first == 0, F.lit(False))
        | F.coalesce(birth == 0, F.lit(False))
        | (birth.isNull() & F.coalesce(first < CLOSE_FIRST_NAME, F.lit(False)))
    )


def _house_number(address: Column) -> Column:
    return F.nullif(F.regexp_extract(address, r"(\d+)", 1), F.lit(""))


CLOSE_STREET = 0.8  # street parts of two address lines at least this alike are one street


def _street(address: Column) -> Column:
    # What follows the house number ("bat a 69 rue pasteur" -> "rue pasteur"), else the line.
    after = F.nullif(F.trim(F.regexp_extract(address, r"\d+\s*(.*)$", 1)), F.lit(""))
    return F.coalesce(after, address)


def other_homes() -> Column:
    """True when the pair's address lines (structs ``l``, ``r``, normalised) name two homes:
    two house numbers ("91" and "113 allee emile zola", or "55" and "53"), or streets less
    than ``CLOSE_STREET`` alike ("66 chemin des ecoliers" and "67 rue des lilas", whose whole
    lines are still half alike). A missing line or number says nothing."""
    left, right = F.col("l.address_line1"), F.col("r.address_line1")
    numbers = _house_number(left) != _house_number(right)
    streets = _levenshtein_similarity(_street(left), _street(right)) < CLOSE_STREET
    return F.coalesce(numbers, F.lit(False)) | F.coalesce(streets, F.lit(False))


# Contact points (columns of the records, where present) through which a record borrows the
# birth dates of its namesakes: its owner's other accounts.
CONTACT_POINTS = ("email", "phone", "mobile_phone", "loyalty_card")
LEND_THROUGH_AT_MOST = 8  # records on one contact point; more is a hub (a shop's phone), no owner


def known_birth_dates(normalized: DataFrame, key: str = "customer_number") -> DataFrame:
    """``(id, from_id, birth_date)``: each record's own birth date (``from_id`` = ``id``) and those
    of the records under the same first name that share a contact point with it, on at most
    ``LEND_THROUGH_AT_MOST`` records (the same person's other accounts: her store card says
    1980 where her web account is silent). ``normalized`` is ``normalized_records``' output."""
    own = normalized.where(F.col("birth_date").isNotNull()).select(
        F.col(key).alias("id"), F.col(key).alias("from_id"), "birth_date"
    )
    contacts = [c for c in CONTACT_POINTS if c in normalized.columns]
    if not contacts:
        return own
    held = (
        normalized.where(F.col("first_name").isNotNull())
        .select(
            F.col(key).alias("id"),
            "first_name",
            "birth_date",
            F.explode(
                F.array_compact(
                    F.array(
                        *[
                            F.when(
                                _blank_to_null(F.col(c)).isNotNull(),
                                F.concat_ws(":", F.lit(c), F.trim(c)),
                            )
                            for c in contacts
                        ]
                    )
                )
            ).alias("contact"),
        )
        .distinct()
    )
    small = held.groupBy("contact").agg(F.countDistinct("id").alias("records"))
    held = held.join(small.where(F.col("records") <= LEND_THROUGH_AT_MOST), "contact")
    a, b = held.alias("a"), held.alias("b")
    lent = a.join(
        b,
        (F.col("a.contact") == F.col("b.contact"))
        & (F.col("a.first_name") == F.col("b.first_name"))
        & (F.col("a.id") != F.col("b.id"))
        & F.col("b.birth_date").isNotNull(),
    ).select(F.col("a.id").alias("id"), F.col("b.id").alias("from_id"), F.col("b.birth_date"))
    return own.unionByName(lent).distinct()


def with_lent_birth_dates(edges: DataFrame, known: DataFrame) -> DataFrame:
    """``edges`` (``left, right, birth_date_sim``...) with ``birth_date_sim`` filled, where it is
    NULL, from the birth dates each side knows (``known_birth_dates``), leaving out what the
    other side's record lends: the best similarity of any two of them, NULL when a side knows
    none."""
    columns = edges.columns
    unknown = F.col("birth_date_sim").isNull()

    def dates(name: str) -> DataFrame:
        return known.select(
            F.col("id").alias(f"{name}_id"),
            F.col("from_id").alias(f"{name}_from"),
            F.col("birth_date").alias(name),
        )

    # One pass over the edges: a pair whose dates are known meets no lent date.
    lent = edges.join(
        dates("l_birth"),
        unknown
        & (F.col("left") == F.col("l_birth_id"))
        & (F.col("l_birth_from") != F.col("right")),
        "left",
    ).join(
        dates("r_birth"),
        unknown
        & (F.col("right") == F.col("r_birth_id"))
        & (F.col("r_birth_from") != F.col("left")),
        "left",
    )
    both = F.col("l_birth").isNotNull() & F.col("r_birth").isNotNull()
    best = F.max(F.when(both, date_similarity(F.col("l_birth"), F.col("r_birth"))))
    return (
        lent.groupBy(*columns)
        .agg(best.alias("lent_sim"))
        .withColumn("birth_date_sim", F.coalesce("birth_date_sim", "lent_sim"))
        .select(*columns)
    )


def linkage_edges(
    records: DataFrame, settings: LinkageSettings, key: str = "customer_number"
) -> DataFrame:
    """Identity edges between records scoring at least ``settings.threshold`` on enough evidence,
    unless they disagree outright on who they are (see ``household_veto``), or live at two
    homes (``other_homes``) while a birth date is missing: namesakes, whom the near-equal
    address lines would otherwise score as one person. Without a birth date, the address is
    half of what says who a record is, so it must name one home.

    Where a pair lacks a birth date, the veto and the namesake rule read the birth dates the
    records' namesakes on a shared contact point lend them (``known_birth_dates``): a mother's
    record and her daughter's undated one, both Éloïse at one address, are two people when the
    daughter's other account, on the same email, says 1980. The score stays that of the pair's
    own fields."""
    normalized = normalized_records(records, key)
    pairs = _pairs(normalized, settings, key, COMPARED)
    namesakes = F.col("birth_date_sim").isNull() & F.col("other_homes")
    scored = score_pairs(pairs.withColumn("other_homes", other_homes()), keep=("other_homes",))
    return (
        scored.where(
            (F.col("score") >= settings.threshold) & (F.col("evidence") >= settings.min_evidence)
        )
        .transform(lambda edges: with_lent_birth_dates(edges, known_birth_dates(normalized, key)))
        .where(~household_veto() & ~namesakes)
        .select(
            F.lit(key).alias("src_type"),
            F.col("left").alias("src_value"),
            F.lit(key).alias("dst_type"),
            F.col("right").alias("dst_value"),
            F.lit(SOURCE).alias("source"),
            "score",
        )
    )

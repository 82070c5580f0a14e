"""From raw files to one row per record with its fields as text: the three wire formats.

``text_lines`` reads files into physical lines with their 1-based line numbers, keeping the
exact bytes of lines that are not valid UTF-8; ``file_lines`` gives the same rows from
``binaryFile`` rows (path, content) already in hand. ``parse_lines`` then turns a line of a
source into ``_fields`` (a struct with the raw text of each field the source's contract lists),
``_rescued`` (a map of the fields it does not list, empty when there are none) and
``_malformed``. Typing and validation against the contract happen later, the same way for every
format (see ``records``).

The contract's fields are a struct, not a map: reading one is a field access, where a map
lookup scans the keys. A JSON line is parsed once, into a map of every key it holds; the struct
is taken from that map, and so are the unknown keys to rescue. Spark's JSON functions stop at
the end of the first complete value and never look at what follows, so the line is parsed
inside brackets, where anything after its object makes the array longer or invalid (see
``parse_jsonl``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crossdata.contracts import Source
from crossdata.spark import conf_set

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The very end of the text. Java's $ also matches before a line separator (U+2028, U+0085, a
# lone CR) that ends it; \z would do, but the world's tests compile these patterns in Python.
_END = r"(?![\s\S])"


def csv_patterns(sep: str) -> tuple[str, str]:
    """(whole line, each field) regexes of CSV separated by ``sep``.

    A field per RFC 4180: quoted (quotes doubled inside) or bare (no quote, no separator).
    Possessive quantifiers keep Java's regex engine linear on long or hostile lines.
    """
    field = _csv_field(sep)
    return rf"^{field}(?:{sep}{field})*+{_END}", rf"{sep}({field})"


def _csv_field(sep: str) -> str:
    """One CSV field separated by ``sep``: quoted, quotes doubled inside, or bare."""
    return rf'(?:"(?:[^"]|"")*+"|[^"{sep}]*+)'


# Files are comma-separated, or semicolon-separated as spreadsheets write CSV in locales whose
# decimal mark is a comma (French among them); the header line tells which.
CSV_SEPARATORS = (",", ";")
_CSV = {sep: csv_patterns(sep) for sep in CSV_SEPARATORS}
# A number as a spreadsheet writes it where the decimal mark is a comma, read in semicolon
# files only: a decimal comma (12,50); digits grouped by thousands with a space (1 234,50 or
# 12 345; Excel writes U+00A0, newer locales U+202F); or grouped with points when a decimal
# comma follows (1.234,50). A point alone (1.234) stays a decimal point: without a comma it
# cannot be told from one.
_LOCAL_NUMBER = (
    r"^\s*[+-]?(?:[0-9]*,[0-9]+"
    r"|[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})++(?:,[0-9]+)?"
    r"|[0-9]{1,3}(?:\.[0-9]{3})++,[0-9]+)\s*$"
)
_GROUP_MARKS = r"[ .\u00a0\u202f]"

# Apache/Nginx combined log format, optionally followed by more quoted fields (the extended
# format's cookie is the first of them). Quotes inside fields are escaped by the servers.
# DOTALL: a line separator (U+2028, U+0085, a lone CR) in a field is a character like another.
_Q = r'"((?:[^"\\]|\\.)*+)"'
COMBINED_LOG = (
    r"(?s)^(\S+) (\S+) (\S+) \[([^\]]+)\] "
    r'"(\S+) (\S+)(?: (\S+))?" '
    r"(\d{3}) (\d+|-) " + _Q + " " + _Q + r"(?: " + _Q + r")?(?: .*)?" + _END
)
_LOG_GROUPS = {
    "ip": 1,
    "ident": 2,
    "auth_user": 3,
    "ts": 4,
    "method": 5,
    "url": 6,
    "protocol": 7,
    "status": 8,
    "bytes": 9,
    "referrer": 10,
    "user_agent": 11,
    "cookie_id": 12,
}

_DATED_FOLDER = r"/(\d{4}-\d{2}-\d{2})/[^/]+$"


def _delivery_date(path: str) -> Column:
    """The date of the dated landing folder a file sits in (``.../2026-11-02/name``), or NULL."""
    return F.try_to_date(F.regexp_extract(path, _DATED_FOLDER, 1), "yyyy-MM-dd")


def _without_cr(name: str) -> Column:
    """The string column ``name`` less one carriage return at its end (a CRLF line split on LF).

    No regex: this runs once per line.
    """
    part = F.col(name)
    shorter = F.expr(f"substring({name}, 1, length({name}) - 1)")
    return F.when(part.endswith("\r"), shorter).otherwise(part)


def file_lines(files: DataFrame) -> DataFrame:
    """binaryFile rows -> (_source_file, _delivery_date, _line, _text, _raw_bytes, _is_header).

    Blank lines are dropped (they are not records). ``_text`` is NULL exactly when the line
    is not valid UTF-8; ``_raw_bytes`` then holds its bytes. The first line of a file is
    marked ``_is_header`` (only CSV uses it).
    """
    content = F.col("content")
    valid_file = F.col("_valid_file")  # once per file, before the explode: see below
    # A valid file splits as UTF-8 directly. Otherwise read it byte-for-byte as ISO-8859-1
    # (a lossless 1:1 mapping), split, and check each line's bytes on their own, so only the
    # broken lines are refused and their exact bytes are kept.
    parts = F.when(valid_file, F.split(content.cast("string"), "\n")).otherwise(
        F.split(F.decode(content, "ISO-8859-1"), "\n")
    )
    # Computed in the select holding posexplode, the check ran again on the whole file for
    # every line it produced (time grew with lines x bytes); a column of its own runs it once.
    exploded = files.withColumn("_valid_file", F.is_valid_utf8(content)).select(
        F.col("path").alias("_source_file"),
        _delivery_date("path").alias("_delivery_date"),
        valid_file,
        F.posexplode(parts).alias("_pos", "_part"),
    )
    # A CRLF file leaves a carriage return at the end of each line.
    line = _without_cr("_part")
    latin_bytes = F.encode(line, "ISO-8859-1")
    text = F.when(F.col("_valid_file"), line).otherwise(
        F.try_validate_utf8(latin_bytes.cast("string"))
    )
    first = F.col("_pos") == 0
    # A byte-order mark at the start of a file is an encoding detail, not data.
    text = F.when(first, F.regexp_replace(text, "^\ufeff", "")).otherwise(text)
    return (
        exploded.select(
            "_source_file",
            "_delivery_date",
            (F.col("_pos") + 1).alias("_line"),
            text.alias("_text"),
            F.when(text.isNull(), latin_bytes).alias("_raw_bytes"),
            first.alias("_is_header"),
            line.alias("_physical"),
        )
        # Blank once its byte-order mark is gone, as the text reader sees a file's first line.
        .where(F.length(F.trim(F.coalesce("_text", "_physical"))) > 0)
        .drop("_physical")
    )


# Spark's file sources pack small files into one task and cut large ones into pieces; with
# the cost of opening a file and a task's byte budget both this large, every file is one task
# of its own, read whole. (Both count bytes; 2**40 leaves room to add up millions of files.)
WHOLE_FILE_CONF = {
    "spark.sql.files.maxPartitionBytes": str(2**40),
    "spark.sql.files.openCostInBytes": str(2**40),
}
_GLOB_CHARS = frozenset("*?[]{}\\")

# JSON as RFC 8259 writes it. Spark's parser also takes 'single quotes' and the bare tokens
# NaN, Infinity and -Infinity unless told not to; its other leniencies are off by default.
# Jackson's own limits (a number of 1,000 characters, a string of 20M) would make a long
# value an unreadable line; lifted, the contract's checks say what is wrong with it
# (wrong_type, oversize_field). Nesting stays limited to Jackson's 1,000 levels.
_NO_LENGTH_LIMIT = str(2**31 - 1)
STRICT_JSON = {
    "allowSingleQuotes": "false",
    "allowNonNumericNumbers": "false",
    "maxNumLen": _NO_LENGTH_LIMIT,
    "maxStringLen": _NO_LENGTH_LIMIT,
}


@contextmanager
def whole_file_tasks(spark: SparkSession) -> Iterator[None]:
    """Within the block, file scans planned on ``spark`` read each file whole, in one task.

    ``text_lines`` numbers lines by their position in the task, so the scan must be planned
    (a ``persist``, an action) inside the block. The session's own values come back after.
    """
    with conf_set(spark, WHOLE_FILE_CONF):
        yield


def readable_by_path(path: str) -> bool:
    """Whether Spark's readers can be given this path as is (no glob character in it)."""
    return not (_GLOB_CHARS & set(path))


def text_lines(spark: SparkSession, paths: list[str]) -> DataFrame:
    """The files at ``paths`` -> the rows of ``file_lines``, plus ``_task`` (see below).

    Spark's text reader streams each file's lines (never a whole file in memory, no size
    limit), keeping their bytes as they are, UTF-8 or not; splitting only on LF leaves a
    CRLF's carriage return, removed here as ``file_lines`` does, and the reader itself drops
    a UTF-8 byte-order mark at the start of a file. A line's number is its position in its
    task, which is exact only when the task read that one file from its first byte: plan the
    scan inside ``whole_file_tasks``, and check with ``_task`` (the task's number, which must
    be one per file and never shared) before trusting ``_line`` (``BronzeBatchWriter`` does).
    Paths with glob characters cannot be given to the reader: keep those for ``file_lines``.
    """
    task = F.spark_partition_id()
    # monotonically_increasing_id is (task number << 33) + the row's position in the task;
    # computed in the projection right over the scan, before any filter, it counts every line.
    scanned = (
        spark.read.option("lineSep", "\n")
        .option("recursiveFileLookup", "true")  # as the stream: no key=value folder columns
        .text(paths)
        .select(
            F.col("_metadata.file_path").alias("_uri"),
            (F.monotonically_increasing_id() - F.shiftleft(task.cast("bigint"), 33) + 1)
            .cast("int")
            .alias("_line"),
            task.alias("_task"),
            F.col("value").alias("_part"),
        )
    )
    # The reader names files by URI (a space is %20); the binaryFile rows name them as
    # given. A metadata-only binaryFile scan (no content read) maps one to the other.
    names = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(paths)
        .select(F.col("_metadata.file_path").alias("_uri"), F.col("path").alias("_source_file"))
    )
    part = F.col("_part")
    valid = F.is_valid_utf8(part)
    as_bytes = part.cast("binary")
    # On a line that is not UTF-8, character functions would misread its bytes: cut bytes.
    cr = F.unhex(F.lit("0D"))
    trimmed_bytes = F.when(
        F.substring(as_bytes, -1, 1) == cr,
        F.expr("substring(cast(_part AS BINARY), 1, octet_length(_part) - 1)"),
    ).otherwise(as_bytes)
    line = _without_cr("_part")
    return (
        scanned.join(F.broadcast(names), "_uri")
        # Blank lines are not records; a line that is not UTF-8 is never blank.
        .where(~valid | (F.length(F.trim(line)) > 0))
        .select(
            "_source_file",
            _delivery_date("_source_file").alias("_delivery_date"),
            "_line",
            F.when(valid, line).alias("_text"),
            F.when(~valid, trimmed_bytes).alias("_raw_bytes"),
            (F.col("_line") == 1).alias("_is_header"),
            "_task",
        )
    )


def raw_text(lines: DataFrame) -> Column:
    """The line as text for people: exact when valid UTF-8, bad bytes shown as U+FFFD."""
    return F.coalesce(F.col("_text"), F.make_valid_utf8(F.col("_raw_bytes").cast("string")))


def _known_names(source: Source) -> Column:
    return F.array(*[F.lit(n) for n in source.field_names])


def _no_fields() -> Column:
    return F.create_map().cast("map<string,string>")


# Java regexes over JSON text. Once each escaped backslash is set aside, every backslash left
# starts an escape, and a \u escape of a surrogate (D800-DFFF) that is not the high half of a
# pair directly followed by its low half stands alone.
_ESCAPED_BACKSLASH = r"\\\\"
_SURROGATE_PAIR = r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_SURROGATE = r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}"


def lone_surrogate(text: Column) -> Column:
    """Whether JSON ``text`` escapes half of a UTF-16 surrogate pair alone (``"\\ud800"``).

    Such a string is no Unicode text: Spark's parser reads it, and the JVM then writes the
    half as ``?``, so two different values (two cookie ids) would be stored alike. Only text
    holding a ``\\u`` pays for the regexes.
    """
    unpaired = F.regexp_replace(
        F.regexp_replace(text, _ESCAPED_BACKSLASH, "_"), _SURROGATE_PAIR, ""
    )
    return F.when(text.contains("\\u"), unpaired.rlike(_SURROGATE)).otherwise(F.lit(False))


def single_json_value(text: Column, schema: str) -> tuple[Column, Column]:
    """``text`` read as one JSON value of ``schema``, and whether it is exactly that value:
    valid to its end, with nothing but whitespace after it, and no half of a surrogate pair
    escaped alone (``lone_surrogate``).

    Spark's parser stops after the first complete value, so ``{...} x}`` or ``[...][...]``
    would read as their first value. Parsed as ``[`` + text + ``]``, text after the value must
    start with ``,`` (a second element), ``]`` (the array ends early) or anything else (an
    error). Only the ``]`` case still parses as one element; for the text that holds a ``]``,
    ``[`` + text + ``,0]`` must then count exactly two elements.
    """
    parsed = F.from_json(
        F.concat(F.lit("["), text, F.lit("]")), f"array<{schema}>", options=STRICT_JSON
    )
    value = F.get(parsed, 0)
    closed_early = text.contains("]") & (
        F.coalesce(F.json_array_length(F.concat(F.lit("["), text, F.lit(",0]"))), F.lit(0)) != 2
    )
    exact = F.coalesce(
        (F.size(parsed) == 1) & value.isNotNull() & ~closed_early & ~lone_surrogate(text),
        F.lit(False),
    )
    return value, exact


def parse_jsonl(lines: DataFrame, source: Source) -> DataFrame:
    """JSON lines -> the contract's fields (nested values as JSON text), the others, _malformed.

    A line is well formed when it is one JSON object and nothing else (see
    ``single_json_value``) with no key twice (which one would be right is unknowable).
    """
    text = F.col("_text")
    record, one_object = single_json_value(text, "map<string,string>")
    keys = F.map_keys(record)
    well_formed = one_object & F.coalesce(
        F.size(F.array_distinct(keys)) == F.size(keys), F.lit(False)
    )
    parsed = lines.select(
        "*",
        F.when(well_formed, record).alias("_fields"),
        (text.isNotNull() & ~well_formed).alias("_malformed"),
    )
    return _from_map(parsed, source)


def _from_map(parsed: DataFrame, source: Source) -> DataFrame:
    """``_fields`` as a map of every field -> the contract's struct and ``_rescued``."""
    fields = F.col("_fields")
    known = _known_names(source)
    unknown = F.size(F.array_except(F.map_keys(fields), known)) > 0
    # Only records with unknown keys pay for the filter (a lambda, interpreted row by row).
    rescued = F.when(
        unknown, F.map_filter(fields, lambda k, _v: ~F.array_contains(known, k))
    ).otherwise(_no_fields())
    return parsed.withColumns(
        {
            "_rescued": F.when(fields.isNotNull(), rescued),
            "_fields": F.when(
                fields.isNotNull(), F.struct(*[fields[n].alias(n) for n in source.field_names])
            ),
        }
    )


def _unquote(field: Column) -> Column:
    # The line pattern has matched: a field that starts with a quote ends with one.
    inner = field.substr(F.lit(2), F.length(field) - 2)
    return F.when(field.startswith('"'), F.regexp_replace(inner, '""', '"')).otherwise(field)


def _csv_fields(text: Column, sep: str = ",") -> Column:
    raw = F.regexp_extract_all(F.concat(F.lit(sep), text), F.lit(_CSV[sep][1]), F.lit(1))
    return F.transform(raw, lambda x: _unquote(x))


def _by_separator(semicolon: Column, make: Callable[[str], Column]) -> Column:
    # CASE WHEN runs only the branch a row takes: comma files pay nothing for the other.
    return F.when(semicolon, make(";")).otherwise(make(","))


def _quoted_right(text: Column, semicolon: Column) -> Column:
    """Whether ``text`` is one CSV row in its file's separator (its quoting unbroken)."""
    return _by_separator(semicolon, lambda sep: text.rlike(_CSV[sep][0]))


def _odd_quotes(text: Column) -> Column:
    """Whether ``text`` holds an odd number of double quotes (NULL for NULL)."""
    # Most lines hold none: a search, then a copy without quotes only for those that do.
    count = F.length(text) - F.length(F.translate(text, '"', ""))
    return text.contains('"') & (count % 2 == 1)


def _quote_roles(text: Column, sep: str) -> Column:
    """How a line with an odd number of quotes can take part in a record that spans lines,
    in a file separated by ``sep``: ``closes`` when it starts inside a quoted cell and ends
    with whole cells (``Bâtiment B",Lyon``), ``opens`` when it is whole cells and then a
    quoted cell left open (``C1,"12 rue des Lilas``). A stray quote in a bare cell
    (``5" screen``) does neither."""
    field = _csv_field(sep)
    inside = r'(?:[^"]|"")*+'
    return F.struct(
        text.rlike(rf"^{inside}\"(?:{sep}{field})*+{_END}").alias("closes"),
        text.rlike(rf"^(?:{field}{sep})*+\"{inside}{_END}").alias("opens"),
    )


def _spans(odd: Column, semicolon: Column) -> Column:
    """A file's lines with an odd number of quotes (``_line`` ascending, with their
    ``_quote_roles`` read with commas and with semicolons) -> the spans (start, end) of its
    records that break across lines.

    Inside a quoted cell quotes are doubled, so a record's quotes are even: one that breaks
    across lines starts on a line with an odd count that opens a cell and ends on the next
    line with an odd count, which must close it (lines in between have even counts). Pairing
    by role, not by count alone, keeps a stray quote or a cell cut short from pairing the
    lines of every record after it. Reading the roles in order, a line that opens (or can
    do both, as ``C2,"``) pairs with the next when that one closes (or can do both); the
    pair is taken and reading goes on after it. One regex replacement over the roles written
    as letters does exactly that walk, in one pass: leftmost pairs first, never overlapping.
    """

    def letter(x: Column) -> Column:
        r = F.when(semicolon, x["semicolons"]).otherwise(x["commas"])
        return (
            F.when(r["opens"] & r["closes"], "A")
            .when(r["opens"], "O")
            .when(r["closes"], "C")
            .otherwise("X")
        )

    roles = F.array_join(F.transform(odd, letter), "")
    # "s" marks the first line of each pair taken: its span ends on the next odd line. The
    # arrays are zipped, not indexed inside a lambda, where Spark would compute them again
    # for every element.
    marks = F.split(F.regexp_replace(roles, "[OA][CA]", "se"), "")
    lines = F.transform(odd, lambda x: x["_line"])
    nexts = F.slice(lines, 2, F.greatest(F.size(lines) - 1, F.lit(0)))
    zipped = F.arrays_zip(marks.alias("m"), lines.alias("start"), nexts.alias("end"))
    return F.transform(
        F.filter(zipped, lambda z: z["m"] == "s"),
        lambda z: F.struct(z["start"].alias("start"), z["end"].alias("end")),
    )


def _spanned_lines(spans: Column) -> Column:
    """``_spans`` -> (line, first line of its span) for every line number of every span."""
    return F.flatten(
        F.transform(
            spans,
            lambda s: F.transform(
                F.sequence(s["start"], s["end"]),
                lambda n: F.struct(n.alias("_line"), s["start"].alias("_start")),
            ),
        )
    )


def _with_span_index(headers: DataFrame) -> DataFrame:
    """``headers`` (with ``_spans``) plus ``_first`` and ``_starts``: element ``n - _first``
    of ``_starts`` is the first line of the span holding line ``n``, NULL outside spans.

    A lookup by position costs the same for any number of spans, where a search of the
    spans (or a map's keys) would cost each line of a file time in their number.
    """
    spans = F.col("_spans")
    no_line = F.lit(None).cast("int")
    blocks = F.transform(
        spans,
        lambda s, k: F.concat(
            # the lines between the previous span and this one: in none
            F.array_repeat(
                no_line,
                F.when(k > 0, s["start"] - F.get(spans, k - 1)["end"] - 1).otherwise(0),
            ),
            F.array_repeat(s["start"], s["end"] - s["start"] + 1),
        ),
    )
    return headers.withColumns({"_first": F.get(spans, 0)["start"], "_starts": F.flatten(blocks)})


def _join_spanned(records: DataFrame) -> DataFrame:
    """Lines with the first line ``_start`` of their span (``_spans``) -> each span's lines
    as one record, numbered by its first line, its lines joined by LF. It is then checked as
    any record is (a cell too many makes it one malformed record). Only when the joined text
    is not quoted right, or a line of the span is not text, do the span's lines stay records
    of their own.
    """
    others = [c for c in records.columns if c not in ("_source_file", "_line", "_start")]
    parts = F.col("_parts")
    grouped = records.groupBy("_source_file", "_start").agg(
        F.sort_array(F.collect_list(F.struct("_line", *others))).alias("_parts")
    )
    # Blank lines were dropped when the file was read: a gap in the numbers is that many
    # line breaks (a line of only spaces inside a cell comes back empty).
    pieces = F.transform(
        parts,
        lambda p, i: F.concat(
            F.when(
                i > 0, F.repeat(F.lit("\n"), p["_line"] - F.get(parts, i - 1)["_line"])
            ).otherwise(F.lit("")),
            p["_text"],
        ),
    )
    joined = F.array_join(pieces, "")
    first = F.get(parts, 0)
    semicolon = F.coalesce(first["_semicolon"], F.lit(False))
    fits = ~F.exists(parts, lambda p: p["_text"].isNull()) & _quoted_right(joined, semicolon)
    whole = F.struct(
        first["_line"].alias("_line"),
        *[(joined if c == "_text" else first[c]).alias(c) for c in others],
    )
    return grouped.select(
        "_source_file", F.explode(F.when(fits, F.array(whole)).otherwise(parts)).alias("_r")
    ).select("_source_file", "_r.*")


def parse_csv(
    lines: DataFrame, numbers: Sequence[str] = (), names: Sequence[str] = ()
) -> DataFrame:
    """CSV with a header line per file -> _fields by header name, and _malformed.

    Header lines are consumed here (they are not records). A header name that is one of
    ``names`` (the contract's) in another case (``Email``, ``CAMPAIGN_ID``) is read as that
    name; other names are kept as written. A file is semicolon-separated when
    its header is one column read with commas and several read with semicolons; in such a
    file a number in one of the ``numbers`` columns is read as such a file writes it: its
    decimal comma as a point and its thousands marks dropped (1 234,50 is 1234.50).
    A quoted cell may hold line breaks (RFC 4180): its record's lines become one row, numbered
    by its first line, with LF between them (see ``_join_spanned``).
    A record is malformed when its quoting is broken or its column count differs from its
    file's header; every record of a file whose header is itself broken (bad quoting, empty or
    repeated names) is malformed. Empty names at the end of the header come from a separator
    ending every line: they name no column, and a record is malformed unless its cells under
    them are empty.
    """
    text = F.col("_text")

    # lower-cased contract name -> the name (spreadsheets and CRM exports capitalise headers)
    canonical = F.create_map(*[F.lit(x) for n in names for x in (n.lower(), n)])

    def header(sep: str) -> Column:
        given = F.transform(_csv_fields(text, sep), lambda x: F.trim(x))
        if names:  # one header line per file: the lambda's cost is nothing
            given = F.transform(given, lambda h: F.coalesce(canonical[F.lower(h)], h))
        return F.when(text.rlike(_CSV[sep][0]), given)

    # One small row per file: its header line read both ways (the way its file is written is
    # kept below) and its record lines with an odd number of quotes (a quoted line break).
    is_header = F.col("_is_header")
    odd = ~is_header & _odd_quotes(text)
    both = (
        lines.where(is_header | odd)
        .groupBy("_source_file")
        .agg(
            F.first(F.when(is_header, header(",")), ignorenulls=True).alias("_commas"),
            F.first(F.when(is_header, header(";")), ignorenulls=True).alias("_semicolons"),
            F.sort_array(
                F.collect_list(
                    F.when(
                        odd,
                        F.struct(
                            "_line",
                            _quote_roles(text, ",").alias("commas"),
                            _quote_roles(text, ";").alias("semicolons"),
                        ),
                    )
                )
            ).alias("_odd"),
        )
    )
    semicolon = (F.size("_commas") == 1) & (F.size("_semicolons") > 1)
    full = F.when(semicolon, F.col("_semicolons")).otherwise(F.col("_commas"))
    # Some exports end every line with a separator: the header's empty names at its end name
    # no column (their cells must be empty). -1 when every name is empty.
    unnamed = F.array_position(F.reverse(F.transform(full, lambda h: h != "")), True) - 1
    named = F.when(unnamed >= 0, F.slice(full, F.lit(1), F.size(full) - unnamed))
    headers = both.select(
        "_source_file",
        F.coalesce(semicolon, F.lit(False)).alias("_semicolon"),
        named.alias("_header"),
        F.size(full).alias("_width"),
        _spans(F.col("_odd"), F.coalesce(semicolon, F.lit(False))).alias("_spans"),
    ).withColumn(
        "_header_ok",
        F.col("_header").isNotNull()
        & (F.size(F.array_distinct("_header")) == F.size("_header"))
        & ~F.exists("_header", lambda h: h == F.lit("")),
    )
    # A first line that is no usable header, or names none of the contract's fields (a file
    # sent without its header: its first record), is itself a record, malformed: kept, not
    # consumed in silence.
    known = F.arrays_overlap("_header", F.array(*[F.lit(n) for n in names])) if names else True
    headers = headers.withColumn(
        "_header_used", F.coalesce(F.col("_header_ok") & known, F.lit(False))
    )
    # Each of the three broadcasts below (the header with ``_first``, the positions, the
    # lines of spans) reads every column of the one small aggregate, so Spark runs it once
    # (its exchange reused); one reading fewer would have it pruned into a second scan of
    # the files.
    body = lines  # header lines too: one the file uses is consumed below, after the join
    index = _with_span_index(headers)
    # Lines in no span: each line takes its file's header (and ``_first``, the position
    # index's origin), then a left anti join drops the lines the index places in a span.
    # An anti join returns only its left side: the index, as long as the file when many of
    # its records span lines, stays in the broadcast. Joined to each line (an outer join
    # writes out both sides), it was copied once per line, which more than doubled the
    # parse's time at 10 % of records on two lines (docs/bench-ingest.md, 2026-12-06).
    positions = index.select(F.col("_source_file").alias("_index_file"), "_starts")
    in_span = (F.col("_source_file") == F.col("_index_file")) & F.get(
        "_starts", F.col("_line") - F.col("_first")
    ).isNotNull()
    records = (
        body.join(F.broadcast(index.drop("_spans", "_starts")), "_source_file", "left")
        .join(F.broadcast(positions), in_span, "left_anti")
        .drop("_first")
        # A first line that is no header the file can use stays, a malformed record.
        .where(~is_header | ~F.coalesce(F.col("_header_used"), F.lit(False)))
    )
    # The lines of each span, with their file's header. Empty when no line has an odd number
    # of quotes (the usual file): with adaptive execution, the inner join then ends this
    # branch before it scans anything.
    spanned = (
        headers.select("*", F.explode(_spanned_lines(F.col("_spans"))).alias("_s"))
        .select("*", "_s.*")
        .drop("_s", "_spans")
    )
    joined = _join_spanned(body.join(F.broadcast(spanned), ["_source_file", "_line"]))
    records = records.unionByName(joined)
    is_semicolon = F.coalesce(F.col("_semicolon"), F.lit(False))
    values = _by_separator(is_semicolon, lambda sep: _csv_fields(text, sep))
    quoted_right = _quoted_right(text, is_semicolon)
    named_count = F.size("_header")
    unnamed_count = F.col("_width") - named_count
    unnamed_empty = F.when(
        unnamed_count > 0,
        F.array_join(F.slice(values, named_count + 1, unnamed_count), "") == "",
    ).otherwise(F.lit(True))
    fits = (
        F.coalesce(F.col("_header_used"), F.lit(False))
        & ~F.col("_is_header")
        & quoted_right
        & (F.size(values) == F.col("_width"))
        & unnamed_empty
    )
    cells = F.when(unnamed_count > 0, F.slice(values, F.lit(1), named_count)).otherwise(values)
    by_name = F.map_from_arrays(F.col("_header"), F.transform(cells, lambda v: F.when(v != "", v)))
    if numbers:
        wanted = F.array(*[F.lit(n) for n in numbers])
        # Only semicolon files pay for the lambda (interpreted row by row).
        by_name = F.when(
            is_semicolon,
            F.transform_values(
                by_name,
                lambda k, v: F.when(
                    F.array_contains(wanted, k) & v.rlike(_LOCAL_NUMBER),
                    F.regexp_replace(F.regexp_replace(v, _GROUP_MARKS, ""), ",", "."),
                ).otherwise(v),
            ),
        ).otherwise(by_name)
    return records.select(
        *[c for c in lines.columns],
        F.when(fits, by_name).alias("_fields"),
        (text.isNotNull() & ~F.coalesce(fits, F.lit(False))).alias("_malformed"),
    )


def parse_combined_log(lines: DataFrame, source: Source, with_cookie: bool) -> DataFrame:
    """Combined log lines -> the contract's fields, '-' read as absent (no unknown fields)."""
    text = F.col("_text")
    groups = dict(_LOG_GROUPS)
    if not with_cookie:
        groups.pop("cookie_id")
    # One regex pass rewrites the line into its groups joined by a unit separator, instead
    # of one regexp_extract per field (twelve passes). A line that holds the separator itself
    # (servers escape control characters, so hardly ever) takes the twelve passes.
    sep = "\u001f"
    joined = F.regexp_replace(text, COMBINED_LOG, sep.join(f"${i}" for i in groups.values()))
    by_group = F.array(*[F.regexp_extract(text, COMBINED_LOG, g) for g in groups.values()])
    parts = F.when(
        text.rlike(COMBINED_LOG),
        F.when(text.contains(sep), by_group).otherwise(F.split(joined, sep)),
    )
    # Apache writes \" and \\ for a quote and a backslash; \xhh and \t stay as written.
    unescaped = F.transform(parts, lambda v: F.regexp_replace(v, r'\\(["\\])', "$1"))
    # The groups are a column of their own: each field reads its group three times, and Spark
    # shares no expression between the branches of a CASE WHEN, so an expression in place of
    # the column ran the line's regex three times per field (30 s instead of 3 s per 200k).
    grouped = lines.select("*", unescaped.alias("_log_groups"))
    values = {}
    for i, name in enumerate(groups):
        value = F.col("_log_groups")[i]
        values[name] = F.when((value != "-") & (value != ""), value)
    fields = F.struct(
        *[values.get(n, F.lit(None).cast("string")).alias(n) for n in source.field_names]
    )
    matched = F.col("_log_groups").isNotNull()
    return grouped.select(
        *lines.columns,
        F.when(matched, fields).alias("_fields"),
        F.when(matched, _no_fields()).alias("_rescued"),
        (text.isNotNull() & ~matched).alias("_malformed"),
    )


def parse_lines(lines: DataFrame, source: Source, log_with_cookie: bool = True) -> DataFrame:
    """Dispatch on the format: ``_fields`` (the contract's struct), ``_rescued``, ``_malformed``."""
    if source.format == "jsonl":
        return parse_jsonl(lines, source)
    if source.format == "csv":
        numbers = [f.name for f in source.fields if f.type in ("double", "long")]
        return _from_map(parse_csv(lines, numbers, source.field_names), source)
    return parse_combined_log(lines, source, with_cookie=log_with_cookie)

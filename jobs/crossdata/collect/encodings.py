"""Lines that are not UTF-8, read in a source's fallback encoding.

Landing files are UTF-8. Some exports are not: a spreadsheet on Windows saves CSV in the
system's code page (windows-1252 in Western Europe), and an old till or CRM may write
ISO-8859-15. Read as UTF-8, every line of such a file holding an accent is refused
(``invalid_encoding``). ``collect.fallback_encodings`` names, per source, the encoding to read
those lines in instead. The choice is made line by line: a line that is valid UTF-8 stays UTF-8
(ASCII lines are the same in both, and a windows-1252 line with an accent is almost never valid
UTF-8), so files of either kind, or a mix, are read right. Only a line that neither reads is
refused: with windows-1252, one holding a byte that encoding leaves undefined.

A fallback must be a single-byte encoding that agrees with ASCII, so that a file still splits
into lines on the byte 0x0A. Python's codec gives the table (one character per byte, or none);
Spark applies it without a UDF: the line's bytes read as ISO-8859-1 (byte n becomes U+00nn),
then ``translate`` to the encoding's characters.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class SingleByteTable:
    """How ``encoding`` differs from ISO-8859-1, byte by byte (above 0x7F)."""

    encoding: str  # Python's name for it
    matching: str  # U+00nn for each byte n that reads as another character ...
    replace: str  # ... and that character, at the same position
    undefined: str  # U+00nn for each byte n the encoding leaves undefined

    def decode(self, raw: bytes) -> str | None:
        """What ``with_fallback`` makes of one line's bytes: UTF-8, else this encoding."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError:
            return None


@cache
def single_byte_table(name: str) -> SingleByteTable:
    """The table of encoding ``name``; ValueError when it cannot be a fallback."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ValueError(f"{name!r} is not an encoding Python knows") from None
    matching, replace, undefined = [], [], []
    for byte in range(256):
        try:
            char = bytes([byte]).decode(info.name)
        except UnicodeDecodeError:
            char = None
        if byte < 0x80 and char != chr(byte):
            raise ValueError(
                f"{name!r} is not a single-byte encoding that agrees with ASCII (windows-1252, "
                "iso-8859-15, cp1250 are): its files cannot be split into lines byte by byte"
            )
        if char is None and _starts_a_character(info.name, byte):
            raise ValueError(
                f"{name!r} is not a single-byte encoding: 0x{byte:X} starts a longer one"
            )
        if char is None:
            undefined.append(chr(byte))
        elif len(char) != 1:
            raise ValueError(f"{name!r} is not a single-byte encoding")
        elif char != chr(byte):
            matching.append(chr(byte))
            replace.append(char)
    return SingleByteTable(info.name, "".join(matching), "".join(replace), "".join(undefined))


def _starts_a_character(encoding: str, byte: int) -> bool:
    """Whether ``byte``, which is no character alone, begins one of two bytes (Shift JIS,
    UTF-8: multi-byte encodings, which cannot be read byte by byte)."""
    for second in range(256):
        try:
            bytes([byte, second]).decode(encoding)
        except UnicodeDecodeError:
            continue
        return True
    return False


def _char_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in chars) + "]"


def with_fallback(lines: DataFrame, encoding: str | None) -> DataFrame:
    """``lines`` (``_text``, ``_raw_bytes``: see ``formats``) with the lines that are not UTF-8
    read in ``encoding``: their ``_text`` set, ``_raw_bytes`` cleared and ``_fallback`` true
    (false on every other line). A line holding a byte the encoding leaves undefined keeps
    its bytes (``invalid_encoding``). No encoding: only ``_fallback``, false.
    """
    from pyspark.sql import functions as F  # here: the settings check imports this module

    if encoding is None:
        return lines.withColumn("_fallback", F.lit(False))
    table = single_byte_table(encoding)
    latin = F.decode(F.col("_raw_bytes"), "ISO-8859-1")  # byte n -> U+00nn, every byte
    text = F.translate(latin, table.matching, table.replace) if table.matching else latin
    if table.undefined:
        text = F.when(~latin.rlike(_char_class(table.undefined)), text)
    decoded = F.when(F.col("_text").isNull() & F.col("_raw_bytes").isNotNull(), text)
    return lines.withColumn("_decoded", decoded).select(
        *[c for c in lines.columns if c not in ("_text", "_raw_bytes")],
        F.coalesce("_text", "_decoded").alias("_text"),
        F.when(F.col("_decoded").isNull(), F.col("_raw_bytes")).alias("_raw_bytes"),
        F.col("_decoded").isNotNull().alias("_fallback"),
    )

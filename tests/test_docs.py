"""The generated reference pages are current, and the generator notices when they are not."""

from __future__ import annotations

from pathlib import Path

from crossdata import gendocs
from crossdata.lakehouse.tables import TABLES, catalog_markdown


def test_the_committed_pages_are_what_the_code_generates() -> None:
    assert gendocs.stale(gendocs.DOCS) == [], "run: python -m crossdata.gendocs"


def test_check_reports_an_edited_page_and_writing_makes_it_current(tmp_path: Path, capsys) -> None:
    assert gendocs.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(gendocs.PAGES)
    assert gendocs.main(["--check", str(tmp_path)]) == 0

    page = tmp_path / "tables.md"
    page.write_text(page.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    (tmp_path / "inputs.md").unlink()
    capsys.readouterr()
    assert gendocs.main(["--check", str(tmp_path)]) == 1
    reported = capsys.readouterr().out
    assert "tables.md is not current" in reported and "inputs.md is not current" in reported


def test_the_catalog_gives_every_table_its_layout_and_reason() -> None:
    text = catalog_markdown()
    sections = text.split("\n## ")[1:]
    assert [s.split("`")[1] for s in sections] == list(TABLES)
    for section in sections:
        spec = TABLES[section.split("`")[1]]
        assert spec.layout and spec.layout in section
        for column in spec.partition_by + spec.zorder_by:
            assert f"`{column}`" in section
        for expr in spec.constraints.values():
            assert f"`{expr}`" in section

"""Reports checked as a person sees them: report.html loaded in headless Chromium (Debian's
`chromium`, which `make test` installs where apt-get can), with a screenshot, every figure
loaded, tables present and no horizontal scroll bar in a 1280 px window. Plus the Markdown that
report text is rendered from.

Screenshots are left in each test's tmp_path (pytest keeps the last few runs) to look at.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

import innerlab  # noqa: F401  (sets XLA flags before jax loads)
from innerlab.report.browser import check_page, find_chromium
from innerlab.report.document import Figure, Report, Section
from innerlab.report.render import markdown_to_html, write_report

WIDTH = 1280
needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium on PATH: `make test` installs Debian's chromium only where apt-get runs as root or "
           "with passwordless sudo, and said why it did not here (or set INNERLAB_CHROMIUM)")


def _assert_looks_right(result: dict, figures: int) -> None:
    assert result["broken"] == [], f"figures that did not load: {result['broken']}"
    assert result["images"] == figures
    assert result["tables"] > 0
    assert result["viewport"] == WIDTH
    assert result["scroll_width"] <= WIDTH, f"page wider than the window; too wide: {result['wide']}"


# Meant to join the side-channels xdist group, so that its smoke run (made once per worker) is
# shared. xdist joins every xdist_group mark's name, so this takes effect only where
# tests/conftest.py leaves tests that name their group alone; until then the test is in a group
# "side-channels_test_report_browser" of its own and makes its own smoke run.
@pytest.mark.xdist_group("side-channels")
@needs_chromium
def test_smoke_report_looks_right_in_a_browser(smoke_run, tmp_path):
    run = smoke_run("side-channels")
    figures = len(list((run / "figures").glob("*.png")))
    assert figures > 0
    result = check_page(run / "report.html", tmp_path / "report.png", WIDTH)
    _assert_looks_right(result, figures)
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")
    assert result["scroll_height"] > 900  # the whole report, not an empty page


@needs_chromium
def test_wide_tables_code_and_figures_stay_inside_the_window(tmp_path):
    import matplotlib.pyplot as plt
    import pandas as pd

    wide = pd.DataFrame({f"a rather long column name {i}": [1.234567, 2.5] for i in range(40)})
    md_table = ("| " + " | ".join(f"column_{i}_wide" for i in range(40)) + " |\n"
                + "| " + " | ".join("---" for _ in range(40)) + " |\n"
                + "| " + " | ".join("1.2345" for _ in range(40)) + " |")
    fig = plt.figure(figsize=(30, 3))  # wider than the window at the report's DPI
    fig.gca().plot([0, 1], [0, 1])
    text = (f"A long unbroken word: {'x' * 400}\n\n{md_table}\n\n"
            f"```\n{'code ' * 400}\n```\n\n`{'inline' * 100}`")
    report = Report("Wide things", "Do they fit?", "Setup.",
                    [Section("Everything wide", text, tables=[wide], figures=[Figure("wide", fig, "A wide figure.")])],
                    command="innerlab run wide " + "--flag " * 200)
    _, html_path = write_report(report, tmp_path / "run")
    result = check_page(html_path, tmp_path / "report.png", WIDTH)
    _assert_looks_right(result, figures=1)
    assert result["tables"] == 2


@needs_chromium
def test_check_page_finds_broken_images_and_overflow(tmp_path):
    import matplotlib.pyplot as plt
    import numpy as np

    plt.imsave(tmp_path / "ok.png", np.zeros((4, 4, 3)))
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><html><body><img src='ok.png'><img src='missing.png'>"
                    "<div id='too-wide' style='width:2000px'>wide</div></body></html>")
    result = check_page(page, tmp_path / "bad.png", WIDTH)
    assert result["images"] == 2 and result["broken"] == ["missing.png"]
    assert result["tables"] == 0
    assert result["viewport"] == WIDTH and result["scroll_width"] >= 2000
    assert "div#too-wide" in result["wide"]
    assert (tmp_path / "bad.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.html", "bad.png", "ok.png"]  # no probe copy left


@needs_chromium
def test_check_page_of_a_read_only_folder(tmp_path, monkeypatch):
    import tempfile

    import matplotlib.pyplot as plt
    import numpy as np

    site = tmp_path / "site"
    site.mkdir()
    plt.imsave(site / "ok.png", np.zeros((4, 4, 3)))
    (site / "page.html").write_text("<html><head></head><body><img src='ok.png'><img src='gone.png'></body></html>")
    mkstemp = tempfile.mkstemp

    def no_writes_in_site(*args, dir=None, **kwargs):  # root ignores chmod, so refuse here
        if dir is not None and Path(dir) == site:
            raise PermissionError(13, "read-only", str(dir))
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", no_writes_in_site)
    result = check_page(site / "page.html", tmp_path / "page.png", WIDTH)
    assert result["images"] == 2 and result["broken"] == ["gone.png"]  # ok.png still found
    assert sorted(p.name for p in site.iterdir()) == ["ok.png", "page.html"]


def test_check_page_without_chromium_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("INNERLAB_CHROMIUM", raising=False)
    assert find_chromium() is None
    (tmp_path / "p.html").write_text("<p>x</p>")
    with pytest.raises(FileNotFoundError, match="no Chromium"):
        check_page(tmp_path / "p.html", tmp_path / "p.png")


class _Elements(HTMLParser):
    """The tags of an HTML fragment, in order, and the text inside each <code>."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[str] = []
        self.code: list[str] = []
        self._in_code = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_code = tag == "code"

    def handle_endtag(self, tag):
        self._in_code = False

    def handle_data(self, data):
        if self._in_code:
            self.code.append(data)


def test_markdown_renders_tables_lists_and_code_as_html():
    text = ("Intro with `x < y` and **bold**.\n\n- one\n- two\n\n1. first\n2. second\n\n"
            "| arm | p_best |\n| --- | ---: |\n| a | 0.5 |\n| b | 0.25 |\n\n<script>alert(1)</script>")
    html = markdown_to_html(text)
    elements = _Elements(html)
    for tag in ("p", "code", "strong", "ul", "ol", "li", "div", "table", "thead", "tbody", "th", "td"):
        assert tag in elements.tags, (tag, html)
    assert elements.tags.count("li") == 4 and elements.tags.count("tr") == 3
    assert elements.code == ["x < y"]
    assert '<div class="table-wrap"><table>' in html  # tables scroll inside the page
    assert "script" not in elements.tags and "&lt;script&gt;" in html  # raw HTML is text, not markup

"""Render a `Report` into a run directory: figures/<name>.png, report.md and a self-contained
report.html (figures embedded as data URIs, no external files or scripts).

Markdown text in a report is CommonMark plus pipe tables, rendered by markdown-it-py with raw
HTML off. The page's CSS keeps it within a 1280 px window: figures shrink to the text width and
wide tables and code blocks scroll inside their own box (`innerlab.report.browser` checks this in
headless Chromium).
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never open a window; the report is files
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from markdown_it import MarkdownIt  # noqa: E402

from innerlab._io import atomic_write_bytes  # noqa: E402
from innerlab.report.document import Report  # noqa: E402

FIGURE_DIR = "figures"
DPI = 110
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def format_cell(value) -> str:
    """A table cell as text: floats to 4 significant digits (large ones whole)."""
    if isinstance(value, float):
        if math.isfinite(value) and 1e4 <= abs(value) < 1e15:
            return f"{value:.0f}"
        return f"{value:.4g}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown pipe table (no index)."""
    def cell(value) -> str:
        return format_cell(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False, name=None)]
    return "\n".join([head, rule, *body])


def html_table(frame: pd.DataFrame) -> str:
    """A DataFrame as an HTML table in the same scrolling wrapper Markdown tables get."""
    table = frame.to_html(index=False, escape=True, border=0, float_format=format_cell)
    return f'<div class="table-wrap">{table}</div>'


def _table_open(renderer, tokens, idx, options, env) -> str:
    return '<div class="table-wrap">' + renderer.renderToken(tokens, idx, options, env)


def _table_close(renderer, tokens, idx, options, env) -> str:
    return renderer.renderToken(tokens, idx, options, env) + "</div>\n"


# CommonMark plus pipe tables. Raw HTML stays off: report text comes from experiment code and
# config values, and `<` in it is text to show, not markup. Every table is wrapped so that a wide
# one scrolls inside the page instead of widening it.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_MARKDOWN.add_render_rule("table_open", _table_open)
_MARKDOWN.add_render_rule("table_close", _table_close)


def inline_html(text: str) -> str:
    """One line of Markdown (`code`, **bold**, *italic*, [links](url)) as inline HTML."""
    return _MARKDOWN.renderInline(text)


def markdown_to_html(text: str) -> str:
    """Markdown (CommonMark plus pipe tables) as HTML; raw HTML in the text is escaped."""
    return _MARKDOWN.render(text).rstrip("\n")


CSS = ("body{font-family:system-ui,-apple-system,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
       "line-height:1.45;color:#222;overflow-wrap:break-word}"
       ".table-wrap{overflow-x:auto;margin:1rem 0}"
       "table{border-collapse:collapse;font-size:.85rem}"
       "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}th{background:#f3f3f3}"
       "img{max-width:100%}figure{margin:1rem 0}figcaption{color:#555;font-size:.9rem}"
       "code{background:#f3f3f3;padding:0 .2rem}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto}")


def _save_figures(report: Report, fig_dir: Path) -> dict[str, bytes]:
    """Save every figure as figures/<name>.png (and close it); returns the PNG bytes by name."""
    pngs: dict[str, bytes] = {}
    for section in report.sections:
        for fig in section.figures:
            if not _SAFE_NAME.match(fig.name):
                raise ValueError(f"figure name {fig.name!r} is not a safe file name")
            if fig.name in pngs:
                raise ValueError(f"figure name {fig.name!r} is used twice")
            fig_dir.mkdir(parents=True, exist_ok=True)
            path = fig_dir / f"{fig.name}.png"
            # No Software/date metadata, so the same figure gives the same bytes.
            fig.figure.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
            plt.close(fig.figure)
            pngs[fig.name] = path.read_bytes()
    if fig_dir.is_dir():  # a re-render must not leave figures the report no longer has
        for old in fig_dir.glob("*.png"):
            if old.stem not in pngs:
                old.unlink()
    return pngs


def render_markdown(report: Report) -> str:
    md = [f"# {report.title}", "", f"**Question.** {report.question}", "", "## Setup", "", report.setup.strip(), ""]
    for section in report.sections:
        md += [f"## {section.title}", ""]
        if section.text:
            md += [section.text.strip(), ""]
        for table in section.tables:
            md += [markdown_table(table), ""]
        for fig in section.figures:
            md += [f"![{fig.caption}]({FIGURE_DIR}/{fig.name}.png)", ""]
            if fig.caption:
                md += [f"*{fig.caption}*", ""]
    md += ["## Reproduce", "", "```", report.command or "(command not recorded)", "```", ""]
    return "\n".join(md)


def render_html(report: Report, pngs: dict[str, bytes]) -> str:
    body = [f"<h1>{html.escape(report.title)}</h1>",
            f"<p><strong>Question.</strong> {inline_html(report.question)}</p>",
            "<h2>Setup</h2>", markdown_to_html(report.setup)]
    for section in report.sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            body.append(markdown_to_html(section.text))
        for table in section.tables:
            body.append(html_table(table))
        for fig in section.figures:
            data = base64.b64encode(pngs[fig.name]).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(fig.caption or fig.name)}" '
                        f'src="data:image/png;base64,{data}">'
                        f"<figcaption>{inline_html(fig.caption)}</figcaption></figure>")
    body += ["<h2>Reproduce</h2>", f"<pre><code>{html.escape(report.command or '(command not recorded)')}</code></pre>"]
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(report: Report, run_dir) -> tuple[Path, Path]:
    """Write figures/<name>.png, report.md and report.html into `run_dir`; returns
    (md_path, html_path)."""
    run_dir = Path(run_dir)
    pngs = _save_figures(report, run_dir / FIGURE_DIR)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    atomic_write_bytes(md_path, render_markdown(report).encode())
    atomic_write_bytes(html_path, render_html(report, pngs).encode())
    return md_path, html_path

"""Render a `Report` to report.md and a self-contained report.html (figures embedded)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from innerlab.report.document import Report  # noqa: E402
from innerlab._io import atomic_write_bytes  # noqa: E402


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")
    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def markdown_to_html(text: str) -> str:
    """Paragraphs, bullet lists, headings, **bold** and `code`: all our reports use."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if all(line.lstrip().startswith(("- ", "* ")) for line in lines):
            out.append("<ul>" + "".join(f"<li>{_inline(line.lstrip()[2:])}</li>" for line in lines) + "</ul>")
        elif lines and lines[0].startswith("#"):
            level = min(len(lines[0]) - len(lines[0].lstrip("#")) + 2, 6)
            out.append(f"<h{level}>{_inline(lines[0].lstrip('#').strip())}</h{level}>")
        elif block.strip():
            out.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(out)


CSS = ("body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
       "table{border-collapse:collapse;font-size:.85rem;margin:1rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem}"
       "th{background:#f3f3f3}img{max-width:100%}figcaption{color:#555;font-size:.9rem}"
       "pre{background:#f6f6f6;padding:.6rem;overflow-x:auto}")


def write_report(report: Report, run_dir) -> tuple[Path, Path]:
    run_dir = Path(run_dir)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    pngs: dict[str, bytes] = {}
    for section in report.sections:
        for fig in section.figures:
            path = fig_dir / f"{fig.name}.png"
            fig.figure.savefig(path, dpi=110, metadata={"Software": None})
            plt.close(fig.figure)
            pngs[fig.name] = path.read_bytes()

    md = [f"# {report.title}", "", f"**Question.** {report.question}", "", "## Setup", "", report.setup, ""]
    body = [f"<h1>{html.escape(report.title)}</h1>", f"<p><strong>Question.</strong> {_inline(report.question)}</p>",
            "<h2>Setup</h2>", markdown_to_html(report.setup)]
    for section in report.sections:
        md += [f"## {section.title}", ""]
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            md += [section.text, ""]
            body.append(markdown_to_html(section.text))
        for table in section.tables:
            md += [markdown_table(table), ""]
            body.append(table.to_html(index=False, escape=True, border=0))
        for fig in section.figures:
            md += [f"![{fig.caption}](figures/{fig.name}.png)", "", f"*{fig.caption}*", ""]
            data = base64.b64encode(pngs[fig.name]).decode()
            body.append(f'<figure><img alt="{html.escape(fig.caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{_inline(fig.caption)}</figcaption></figure>")
    if report.command:
        md += ["## Reproduce", "", "```", report.command, "```", ""]
        body += ["<h2>Reproduce</h2>", f"<pre>{html.escape(report.command)}</pre>"]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    atomic_write_bytes(md_path, "\n".join(md).encode())
    atomic_write_bytes(html_path, page.encode())
    return md_path, html_path

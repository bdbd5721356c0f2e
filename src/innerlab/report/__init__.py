"""Statistics, figures and Markdown/HTML reports."""

from innerlab.report.document import Figure, Report, Section
from innerlab.report.stats import bootstrap_ci, format_ci, summarize

__all__ = ["Figure", "Report", "Section", "bootstrap_ci", "format_ci", "summarize"]

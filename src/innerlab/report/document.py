"""What an experiment's analysis hands to the renderer: a document of sections.

`analyze` builds a `Report` from the tidy metric rows alone, so `innerlab report RUN_DIR`
re-renders without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Figure:
    """A figure; `figure` is a matplotlib Figure, saved as figures/<name>.png."""

    name: str
    figure: Any
    caption: str = ""


@dataclass
class Section:
    """A heading, Markdown text, optional tables (rendered as Markdown/HTML) and figures."""

    title: str
    text: str = ""
    tables: list[pd.DataFrame] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Report:
    """One run's report. `command` is the exact command that reproduces it."""

    title: str
    question: str
    setup: str
    sections: list[Section]
    command: str = ""
    checks: list[Any] = field(default_factory=list)
    """The controls (`experiments.reporting.Check`), also shown in a "Controls" section."""

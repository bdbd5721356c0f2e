"""Rows -> report for the example experiment."""

from __future__ import annotations

from innerlab.experiments.reporting import Check, ci, ci_text, controls_section
from innerlab.report.document import Report, Section


def build_report(config, rows) -> Report:
    checks = []
    for gap in sorted(rows.gap.unique()):
        mean, low, high = ci(rows, "p_best", gap=gap)
        if gap >= 0.2:
            checks.append(Check(f"gap {gap:g}: finds the best arm", "p_best >= 0.8",
                                ci_text(rows, "p_best", gap=gap), mean >= 0.8))
        elif gap == 0:
            chance = 1 / config.arms
            checks.append(Check("gap 0: cannot tell the arms apart", f"|p_best - {chance:.2f}| <= 0.2",
                                ci_text(rows, "p_best", gap=gap), abs(mean - chance) <= 0.2))
    findings = "\n".join(f"- gap {g:g}: p_best {ci_text(rows, 'p_best', gap=g)}" for g in sorted(rows.gap.unique()))
    return Report(title="Example: bandit arms", question="",
                  setup=f"{config.arms} arms, {config.total_steps:,} pulls per seed, {config.num_seeds} seeds.",
                  sections=[controls_section(checks, "Both controls pass."), Section("Findings", findings)],
                  checks=checks)

"""The printed tables, results.json and chart.png."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.limits import Limit
from bench.metrics import MetricSpec, Results, Row
from bench.servers import DOCKYARD, REFERENCE


def fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "—"
    if unit in ("MB/s", "MB"):
        return f"{value / 1e6:,.0f} {unit}"
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "s":
        return f"{value:,.2f} s"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:,.3g} {unit}"


def _met(row: Row) -> str:
    if row.verdict.met is None:  # no target; a detail may still say where it stands
        return f"({row.verdict.detail})" if row.verdict.detail else ""
    mark = "[green]yes[/green]" if row.verdict.met else "[red]no[/red]"
    return f"{mark} ({row.verdict.detail})" if row.verdict.detail else mark


def results_table(rows: list[Row], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("metric", "left"),
        ("Dockyard", "right"),
        ("reference", "right"),
        ("ratio D/ref", "right"),
        ("target", "left"),
        ("met?", "left"),
        ("machine limit", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        unit = row.spec.unit
        table.add_row(
            row.spec.label,
            fmt(row.dockyard, unit),
            fmt(row.reference, unit),
            f"{row.ratio:.2f}x" if row.ratio is not None else "—",
            row.spec.target,
            _met(row),
            fmt(row.limit, unit) if row.limit is not None else "",
        )
    return table


def limits_table(limits: list[Limit]) -> Table:
    table = Table(title="Machine limits (measured in this run)", title_justify="left")
    table.add_column("limit")
    table.add_column("value", justify="right")
    table.add_column("note")
    for lim in limits:
        table.add_row(lim.label, fmt(lim.value, lim.unit), lim.note)
    return table


def print_report(
    console: Console, rows: list[Row], limits: list[Limit], title: str, notes: list[str]
) -> None:
    console.print()
    console.print(limits_table(limits))
    console.print()
    console.print(results_table(rows, title))
    for note in notes:
        console.print(f"  {note}")


def to_json(
    rows: list[Row],
    specs: list[MetricSpec],
    results: Results,
    limits: list[Limit],
    meta: dict[str, Any],
) -> dict[str, Any]:
    by_key = {r.spec.key: r for r in rows}
    metrics = []
    for spec in specs:
        if spec.key not in by_key:
            continue
        row = by_key[spec.key]
        metrics.append(
            {
                "key": spec.key,
                "label": spec.label,
                "unit": "bytes" if spec.unit == "MB" else ("bytes/s" if spec.unit == "MB/s" else spec.unit),
                "higher_is_better": spec.higher_is_better,
                "compared": spec.compared,  # False: Dockyard only (no reference figure)
                DOCKYARD: {
                    "median": row.dockyard,
                    "samples": list(results.samples[spec.key].get(DOCKYARD, [])),
                },
                REFERENCE: {
                    "median": row.reference,
                    "samples": list(results.samples[spec.key].get(REFERENCE, [])),
                },
                "ratio": row.ratio,
                "target": spec.target,
                "met": row.verdict.met,
                "met_detail": row.verdict.detail,
                "machine_limit": row.limit,
                "machine_limit_key": spec.limit_key or None,
            }
        )
    return {
        **meta,
        "limits": [
            {
                "key": lim.key,
                "label": lim.label,
                "value": lim.value,
                "unit": "bytes/s" if lim.unit == "MB/s" else lim.unit,
                "note": lim.note,
            }
            for lim in limits
        ],
        "metrics": metrics,
        "details": results.extras,
        "errors": results.errors,
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_chart(path: Path, rows: list[Row], title: str) -> bool:
    """Horizontal bars: how many times better Dockyard is (ratio, or 1/ratio where lower wins)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    plotted = [r for r in rows if r.ratio is not None and r.ratio > 0]
    if not plotted:
        return False
    labels = [r.spec.label for r in plotted]
    gains = [r.ratio if r.spec.higher_is_better else 1 / r.ratio for r in plotted if r.ratio]
    colors = ["#2a9d8f" if g >= 1 else "#e76f51" for g in gains]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(plotted) + 1.4), dpi=100)
    y = list(range(len(plotted)))[::-1]
    ax.barh(y, gains, color=colors)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    for yi, g in zip(y, gains, strict=True):
        ax.text(g, yi, f" {g:.2f}x", va="center", fontsize=7)
    ax.set_xlabel("Dockyard advantage over reference (x, log scale; >1 = Dockyard better)", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True

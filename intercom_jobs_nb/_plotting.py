"""Plotting: the outcomes of a run as a bar chart, and the table of counts behind it.

matplotlib is an optional extra (``pip install "intercom-jobs-nb[plot]"``), imported only when a
chart is drawn, so ``import intercom_jobs_nb`` stays fast and works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ._errors import ConfigurationError
from ._format import number

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The outcomes of a row, in the order charts and tables show them. ``error``: the status could
#: not be read (``error_code`` says why).
__all__ = ["plot_status", "outcomes", "outcome_counts", "OUTCOMES"]

OUTCOMES = ("success", "failed", "pending", "error")
NO_TYPE = "(none)"
# Colour-blind-safe and readable in both light and dark themes (Okabe-Ito palette).
OUTCOME_COLORS = {
    "success": "#009E73",
    "failed": "#D55E00",
    "pending": "#E69F00",
    "error": "#CC79A7",
}
_TYPE_COLORS = (
    "#0072B2",
    "#56B4E9",
    "#009E73",
    "#E69F00",
    "#D55E00",
    "#CC79A7",
    "#F0E442",
    "#999999",
)
PLOT_HINT = 'plot_status needs matplotlib: pip install "intercom-jobs-nb[plot]"'


def outcomes(df: pd.DataFrame) -> pd.Series:
    """Each row's outcome: its status, or ``"error"`` where the status could not be read.

    Example:
        >>> ij.outcomes(df).value_counts()                           # doctest: +SKIP
        success    160
        ...
    """
    if "status" not in df.columns:
        raise ConfigurationError("outcomes needs a jobs DataFrame (from fetch_jobs)")
    labels = df["status"].astype(object).where(df["status"].notna(), "error")
    return pd.Series(
        pd.Categorical(labels, categories=list(OUTCOMES)), index=df.index, name="outcome"
    )


def outcome_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Counts of outcomes (rows) by resource type (columns): the data `plot_status` draws.

    Every outcome is a row, even at zero, so tables of several runs line up. Rows whose status
    could not be read have no resource type; they count under ``"(none)"``.

    Example:
        >>> ij.outcome_counts(df)                                    # doctest: +SKIP
        resource_type  ticket  (none)
        outcome
        success           160       0
        failed             18       0
        pending            20       0
        error               0       2
    """
    outcome = outcomes(df)
    if "resource_type" in df.columns:
        rtype = df["resource_type"].astype(object).where(df["resource_type"].notna(), NO_TYPE)
    else:
        rtype = pd.Series(NO_TYPE, index=df.index)
    table = pd.crosstab(outcome, rtype.rename("resource_type"), dropna=False)
    table = table.reindex(index=list(OUTCOMES), fill_value=0)
    # Real types first (by size), "(none)" last: it is the leftover, not a kind of job.
    named = sorted((c for c in table.columns if c != NO_TYPE), key=lambda c: -table[c].sum())
    columns = named + ([NO_TYPE] if NO_TYPE in table.columns else [])
    if not columns:
        columns = [NO_TYPE]
    table = table.reindex(columns=columns, fill_value=0).astype("int64")
    table.index.name = "outcome"
    table.columns.name = "resource_type"
    return table


def plot_status(df: pd.DataFrame, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """A bar chart of outcomes: success, failed, pending, and fetch errors as their own bar.

    With one resource type the bars are coloured by outcome and labelled with their counts; with
    several, each bar is stacked by resource type (a legend tells them apart).

    Args:
        df: a DataFrame from `fetch_jobs`, `refresh` or `wait_for_jobs`.
        ax: the matplotlib Axes to draw on; default: a new figure's.
        title: the chart's title; default: "Job outcomes (N jobs)".

    Returns:
        The Axes drawn on.

    Raises:
        ImportError: matplotlib is not installed (the message says how to install it).

    Example:
        >>> ax = ij.plot_status(df)                                  # doctest: +SKIP
        >>> ax.figure.savefig("outcomes.png")                        # doctest: +SKIP
    """
    try:
        import matplotlib  # noqa: F401  (checked first, for the install hint)
    except ImportError as exc:
        raise ImportError(PLOT_HINT) from exc
    table = outcome_counts(df)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 3.6))
    x = list(range(len(table.index)))
    named = [c for c in table.columns if c != NO_TYPE]
    if len(named) <= 1:
        totals = table.sum(axis=1)
        bars = ax.bar(
            x, totals.to_numpy(), color=[OUTCOME_COLORS[o] for o in table.index], width=0.6
        )
        ax.bar_label(bars, labels=[str(v) for v in totals], padding=2)
    else:
        bottom = pd.Series(0, index=table.index)
        for k, column in enumerate(table.columns):
            color = "#BBBBBB" if column == NO_TYPE else _TYPE_COLORS[k % len(_TYPE_COLORS)]
            ax.bar(
                x,
                table[column].to_numpy(),
                bottom=bottom.to_numpy(),
                width=0.6,
                label=str(column),
                color=color,
            )
            bottom = bottom + table[column]
        for xi, total in zip(x, bottom, strict=True):
            ax.annotate(
                str(total),
                (xi, total),
                ha="center",
                va="bottom",
                xytext=(0, 2),
                textcoords="offset points",
            )
        ax.legend(title="resource type", frameon=False, fontsize="small")
    ax.set_xticks(x, [str(o) for o in table.index])
    ax.set_ylabel("jobs")
    ax.set_title(title if title is not None else f"Job outcomes ({number(len(df))} jobs)")
    ax.margins(y=0.15)  # room for the count labels above the tallest bar
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax

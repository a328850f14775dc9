"""Self-contained HTML reports of the fit and planner pages ("Download report (HTML)").

:func:`build_report` is pure: it takes the page's inputs, numbers, tables, figures and
recommendation and returns one HTML document that opens offline (plotly.js is inlined once, for
the first chart). Every string that reaches the document is escaped with ``html.escape`` (labels,
values, table cells via ``DataFrame.to_html(escape=True)``); figures are embedded by Plotly,
whose JSON encoder escapes ``<`` and ``>``, and trace names are escaped by the chart builders.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go

STYLE = """
body { font-family: "Source Sans Pro", Helvetica, Arial, sans-serif; color: #1a1d24; margin: 2rem auto;
       max-width: 1200px; padding: 0 1.5rem; line-height: 1.45; }
h1 { font-size: 1.9rem; margin-bottom: .2rem; } h2 { font-size: 1.35rem; margin-top: 2rem;
     border-bottom: 1px solid #dadce0; padding-bottom: .3rem; }
.sub { color: #5f6368; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .95rem; }
th, td { border: 1px solid #dadce0; padding: .35rem .6rem; text-align: left; vertical-align: top; }
th { background: #f1f3f4; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; }
.card { border: 1px solid #dadce0; border-radius: .5rem; padding: .6rem .9rem; min-width: 12rem; }
.card .label { color: #5f6368; font-size: .9rem; } .card .value { font-size: 1.5rem; font-weight: 600; }
.card .note { color: #5f6368; font-size: .85rem; }
.recommendation { border: 2px solid #1f5fbf; border-radius: .5rem; padding: .8rem 1rem; background: #f4f8fe; }
.warnings { border-left: 4px solid #e37400; background: #fef7e0; padding: .5rem 1rem; margin: .8rem 0; }
.chart { margin: .5rem 0 1.5rem; } .caption { color: #5f6368; font-size: .9rem; }
footer { color: #5f6368; font-size: .85rem; margin-top: 2.5rem; }
"""


def _text(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pairs_table(rows: Iterable[tuple[object, object]]) -> str:
    body = "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>" if body else ""


def build_report(
    *,
    title: str,
    inputs: Sequence[tuple[str, object]],
    metrics: Sequence[tuple[str, object, object]] = (),
    recommendation: str | None = None,
    tables: Sequence[tuple[str, pd.DataFrame]] = (),
    figures: Sequence[tuple[str, go.Figure]] = (),
    notes: Sequence[str] = (),
    subtitle: str | None = None,
    link: str | None = None,
    generated_at: str | None = None,
    warnings: Sequence[str] = (),
) -> str:
    """One self-contained HTML document (str).

    ``inputs``: (name, value) pairs; ``metrics``: (label, value, note) cards; ``tables``:
    (caption, DataFrame); ``figures``: (caption, Plotly figure); ``notes``: paragraphs;
    ``link``: the dashboard URL that reproduces the view; ``warnings``: identifiability warnings,
    shown right under the results (next to the prediction they qualify).
    """
    when = generated_at or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_text(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_text(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="sub">{_text(subtitle)}</p>')
    if recommendation:
        parts.append(f'<h2>Recommendation</h2><div class="recommendation">{_text(recommendation)}</div>')
    if metrics:
        cards = "".join(
            f'<div class="card"><div class="label">{_text(label)}</div><div class="value">{_text(value)}</div>'
            + (f'<div class="note">{_text(note)}</div>' if note else "")
            + "</div>"
            for label, value, note in metrics
        )
        parts.append(f'<h2>Results</h2><div class="cards">{cards}</div>')
    if warnings:
        items = "".join(f"<li>{_text(w)}</li>" for w in warnings)
        parts.append(f'<div class="warnings"><strong>Identifiability warnings</strong><ul>{items}</ul></div>')
    parts.append("<h2>Inputs</h2>" + _pairs_table(inputs))
    plotly_included = False
    for caption, figure in figures:
        chart = figure.to_html(
            include_plotlyjs="inline" if not plotly_included else False,
            full_html=False,
            config={"displaylogo": False, "responsive": True},
        )
        plotly_included = True
        parts.append(f'<h2>{_text(caption)}</h2><div class="chart">{chart}</div>')
    for caption, frame in tables:
        parts.append(f"<h2>{_text(caption)}</h2>" + frame.to_html(index=False, escape=True, border=0, na_rep="–"))
    for note in notes:
        parts.append(f'<p class="caption">{_text(note)}</p>')
    footer = f"Generated by scaleplan on {_text(when)}."
    if link and link.lower().startswith(("http://", "https://")):
        footer += f' Reproduce this view: <a href="{_text(link)}">{_text(link)}</a>'
    parts.append(f"<footer>{footer}</footer></body></html>")
    return "\n".join(parts)

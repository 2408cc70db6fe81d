"""Server-rendered SVG: the charts over time and the pipeline graph.

No JavaScript: each picture is one <svg> with a viewBox, so it scales with the page. Every
piece of text goes through markupsafe.escape. Styling is in chute.css (classes only), which
keeps the Content-Security-Policy strict (no inline styles).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from chute.pipeline.graph import Plan


def _num(n: float) -> str:
    """1234567 -> 1.2M: short labels for axes."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + unit
    return f"{n:g}"


# -- charts over time -------------------------------------------------------------------------
# No viewBox: x positions are percentages of the width and y positions pixels, so the chart
# fills its box at any width while its text stays at the page's size (a scaled viewBox made
# the labels larger than the page's text on a wide screen and unreadable on a phone).

@dataclass
class Series:
    name: str
    css: str  # class of its bars or line (chute.css: s-rows, s-failed, s-p50 ...)
    values: list[float | None]


def _exact(n: float) -> str:
    """Tooltips give the whole number: 12,345 (the axis says 12k)."""
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.2f}"


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above value (axes end on round numbers)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _frame(label: str, chart_id: str, height: int, top_value: float, fmt: Callable[[float], str],
           ticks: list[tuple[float, str]]) -> tuple[list[str], str]:
    """The chart's opening, grid and time axis; and its value labels, drawn last (over the bars)."""
    parts = [f'<svg class="chart" id="{escape(chart_id)}" width="100%" height="{height}" role="img" '
             f'aria-label="{escape(label)}">']
    plot_top, plot_bottom = 22, height - AXIS_H
    values = []
    for fraction in (1, 0.5):
        y = plot_bottom - (plot_bottom - plot_top) * fraction
        parts.append(f'<line class="grid" x1="0" x2="100%" y1="{y:.1f}" y2="{y:.1f}"/>')
        values.append(f'<text class="tick value" x="2" y="{y - 3:.1f}">{escape(fmt(top_value * fraction))}</text>')
    parts.append(f'<line class="axis" x1="0" x2="100%" y1="{plot_bottom}" y2="{plot_bottom}"/>')
    n = len(ticks)
    every = max(1, math.ceil(n / 7))
    for i, (x, text) in enumerate(ticks):
        if i % every == 0:
            anchor = "start" if x < 4 else "end" if x > 96 else "middle"
            parts.append(f'<text class="tick" x="{x:.2f}%" y="{height - 5}" text-anchor="{anchor}">'
                         f'{escape(text)}</text>')
    return parts, "".join(values)


AXIS_H = 20


def bar_chart(buckets: list, series: list[Series], *, label: str, chart_id: str, fmt: Callable[[float], str] = None,
              height: int = 170) -> Markup:
    """Stacked bars, one column per time bucket; each column's tooltip names every series."""
    fmt = fmt or _num
    n = max(len(buckets), 1)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(buckets))]
    top_value = nice_max(max(max(totals, default=0), 2))  # counts: a half-way tick of 0.5 reads oddly
    plot_top, plot_bottom = 22, height - AXIS_H
    scale = (plot_bottom - plot_top) / top_value
    slot = 100 / n
    bar = slot * (0.72 if n > 1 else 0.3)
    ticks = [(i * slot + slot / 2, b.label) for i, b in enumerate(buckets)]
    parts, values_axis = _frame(label, chart_id, height, top_value, fmt, ticks)
    for i, b in enumerate(buckets):
        x = i * slot + (slot - bar) / 2
        tip = b.long_label + ": " + ", ".join(f"{_exact(s.values[i] or 0)} {s.name}" for s in series)
        tip += f" ({b.run_count} run{'s' if b.run_count != 1 else ''})"
        parts.append(f'<g class="bucket" data-start="{b.start.isoformat()}" data-total="{totals[i]:g}">'
                     f'<title>{escape(tip)}</title>'
                     f'<rect class="hit" x="{i * slot:.3f}%" y="{plot_top}" width="{slot:.3f}%" '
                     f'height="{plot_bottom - plot_top}"/>')
        y = plot_bottom
        for s in series:
            h = (s.values[i] or 0) * scale
            if h > 0:
                h = max(h, 1.5)  # a small non-zero value stays visible
                y -= h
                parts.append(f'<rect class="{s.css}" x="{x:.3f}%" y="{y:.1f}" width="{bar:.3f}%" height="{h:.1f}"/>')
        parts.append("</g>")
    parts.append(values_axis + "</svg>")
    return Markup("".join(parts))


def line_chart(buckets: list, series: list[Series], *, label: str, chart_id: str,
               fmt: Callable[[float], str] = None, height: int = 170) -> Markup:
    """One line per series across the buckets (gaps where a bucket has no value), with dots."""
    fmt = fmt or _num
    n = max(len(buckets), 1)
    values = [v for s in series for v in s.values if v is not None]
    top_value = nice_max(max(values, default=0))
    plot_top, plot_bottom = 22, height - AXIS_H
    plot_h = plot_bottom - plot_top
    slot = 100 / n
    ticks = [(i * slot + slot / 2, b.label) for i, b in enumerate(buckets)]
    parts, values_axis = _frame(label, chart_id, height, top_value, fmt, ticks)
    # Lines in a stretched inner box (1000 units wide, strokes unscaled); dots in the outer one.
    parts.append(f'<svg x="0" y="{plot_top}" width="100%" height="{plot_h}" viewBox="0 0 1000 {plot_h}" '
                 f'preserveAspectRatio="none">')
    for s in series:
        run: list[str] = []
        for i, v in enumerate([*s.values, None]):
            if v is None:
                if len(run) > 1:
                    parts.append(f'<polyline class="{s.css}" vector-effect="non-scaling-stroke" '
                                 f'points="{" ".join(run)}"/>')
                run = []
            else:
                run.append(f"{(i + 0.5) * 1000 / n:.1f},{plot_h - v / top_value * plot_h:.1f}")
    parts.append("</svg>")
    for i, b in enumerate(buckets):
        present = [(s, s.values[i]) for s in series if s.values[i] is not None]
        if not present:
            continue
        tip = b.long_label + ": " + ", ".join(f"{s.name} {fmt(v)}" for s, v in present)
        parts.append(f'<g class="bucket" data-start="{b.start.isoformat()}"><title>{escape(tip)}</title>'
                     f'<rect class="hit" x="{i * slot:.3f}%" y="{plot_top}" width="{slot:.3f}%" height="{plot_h}"/>')
        # Each series' dot smaller than the one before, drawn over it: where two values meet (p50 =
        # p95 when a column has one run) both stay visible, a dot in a ring, not one colour hiding the other.
        for s, v in present:
            radius = 3 + 2 * (len(series) - 1 - series.index(s))
            parts.append(f'<circle class="{s.css}" cx="{(i + 0.5) * slot:.3f}%" '
                         f'cy="{plot_bottom - v / top_value * plot_h:.1f}" r="{radius}"/>')
        parts.append("</g>")
    parts.append(values_axis + "</svg>")
    return Markup("".join(parts))


# -- the pipeline graph ----------------------------------------------------------------------
@dataclass
class Vertex:
    key: str
    label: str
    kind: str  # input | reference | param | filter | node | dataset | table
    detail: str = ""
    href: str | None = None
    caption: str = ""  # the small line above the name; the kind when empty
    short: str = ""  # the name drawn in the box; the label when empty
    layer: int = 0
    row: float = 0.0


@dataclass
class Graph:
    vertices: dict[str, Vertex] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def add(self, key: str, label: str, kind: str, detail: str = "") -> str:
        self.vertices.setdefault(key, Vertex(key, label, kind, detail))
        return key

    def link(self, a: str, b: str) -> None:
        if (a, b) not in self.edges:
            self.edges.append((a, b))


def pipeline_graph(plan: Plan, references: set[str], params: set[str], tables: dict[str, str],
                   node_href: Callable[[str], str | None]) -> Graph:
    """Nodes, the datasets between them and the target tables (`tables`: dataset -> schema.table)."""
    g = Graph()
    nodes = [*plan.static, *plan.batch]
    produced = {o for n in nodes for o in n.outputs}
    source = g.add(f"ds:{plan.source}", plan.source, "input", "rows of the landing files, batch by batch")

    def origin(name: str) -> str:
        if name == plan.source:
            return source
        if name in produced:
            return g.add(f"ds:{name}", name, "dataset")
        if name in references:
            return g.add(f"ref:{name}", name, "reference", "a reference file")
        return g.add(f"param:{name}", name, "param" if name in params else "reference", "a parameter")

    for f in plan.filters:
        key = g.add(f"filter:{f.name}", f.name, "filter", "file filter: decides which files are read")
        for i in f.inputs:
            g.link(origin(i), key)
        g.link(key, source)
    for n in nodes:
        key = g.add(f"node:{n.name}", n.name, "node", "runs once per run" if n in plan.static else "runs per batch")
        g.vertices[key].href = node_href(n.name)
        for i in n.inputs:
            g.link(origin(i), key)
        for o in n.outputs:
            g.link(key, g.add(f"ds:{o}", o, "dataset"))
    for dataset, qualified_name in tables.items():
        if f"ds:{dataset}" in g.vertices:
            key = g.add(f"table:{dataset}", qualified_name, "table", "target table")
            schema, _, table = qualified_name.rpartition(".")
            g.vertices[key].caption, g.vertices[key].short = f"table · {schema}", table
            g.link(f"ds:{dataset}", key)
    _layout(g)
    return g


def lineage_graph(current: str, stages: list[str], subscriptions: list[dict], tables: dict[str, list[str]],
                  queues: dict[str, dict[str, int]], dead: dict[str, int]) -> Graph:
    """Chained stages across projects: each stage, the tables it writes, and what each follows
    (a table's rows, or the upstream's files), with its queue and dead letters in its caption."""
    g = Graph()
    for stage in stages:
        queue = queues.get(stage, {})
        waiting = queue.get("ready", 0) + queue.get("leased", 0)
        caption = f"stage · {waiting:,} queued" + (f" · {dead[stage]:,} dead" if dead.get(stage) else "")
        key = g.add(f"stage:{stage}", stage, "stage",
                    f"{queue.get('ready', 0):,} ready, {queue.get('leased', 0):,} leased, {queue.get('dead', 0):,} dead "
                    f"messages; {dead.get(stage, 0):,} open dead letters")
        g.vertices[key].caption = caption
        g.vertices[key].href = "/pipeline" if stage == current else f"/lineage#stage-{stage}"
        for table in tables.get(stage, []):
            t = g.add(f"table:{stage}:{table}", table, "table", f"written by {stage}")
            g.vertices[t].caption = "table"
            if stage == current:
                g.vertices[t].href = f"/tables/{table}"
            g.link(key, t)
    for sub in subscriptions:
        if sub["stage"] not in stages or sub["upstream"] not in stages:
            continue
        if sub["follows"] == "rows" and sub["source_table"]:
            source = g.add(f"table:{sub['upstream']}:{sub['source_table']}", sub["source_table"], "table",
                           f"written by {sub['upstream']}")
            g.vertices[source].caption = "table"
            g.link(f"stage:{sub['upstream']}", source)
            g.link(source, f"stage:{sub['stage']}")
        else:
            g.link(f"stage:{sub['upstream']}", f"stage:{sub['stage']}")
    _layout(g)
    return g


def _layout(g: Graph) -> None:
    """Layers by longest path from the roots; rows ordered by the mean row of the parents."""
    parents: dict[str, list[str]] = {k: [] for k in g.vertices}
    for a, b in g.edges:
        parents[b].append(a)
    done: dict[str, int] = {}

    def layer(k: str, seen: frozenset[str] = frozenset()) -> int:
        if k not in done:
            done[k] = 0 if not parents[k] or k in seen else 1 + max(layer(p, seen | {k}) for p in parents[k])
        return done[k]

    for k, v in g.vertices.items():
        v.layer = layer(k)
    # Pull roots (references, params) next to their first consumer instead of all in layer 0.
    children: dict[str, list[str]] = {k: [] for k in g.vertices}
    for a, b in g.edges:
        children[a].append(b)
    for k, v in g.vertices.items():
        if not parents[k] and children[k] and v.kind != "input":
            v.layer = max(0, min(g.vertices[c].layer for c in children[k]) - 1)
    by_layer: dict[int, list[Vertex]] = {}
    for v in g.vertices.values():
        by_layer.setdefault(v.layer, []).append(v)
    for number in sorted(by_layer):
        column = by_layer[number]
        for v in column:
            rows = [g.vertices[p].row for p in parents[v.key] if g.vertices[p].layer < number]
            v.row = sum(rows) / len(rows) if rows else 0.0
        column.sort(key=lambda v: (v.row, v.key))
        for i, v in enumerate(column):
            v.row = i


BOX_W, BOX_H, COL_W, ROW_H, PAD = 184, 44, 208, 76, 12


def _short(text: str, limit: int = 23) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def graph_svg(g: Graph) -> Markup:
    """Top to bottom: one row of boxes per layer, so a long chain grows down, not off the screen."""
    layers = max((v.layer for v in g.vertices.values()), default=0) + 1
    widths = [sum(1 for v in g.vertices.values() if v.layer == n) for n in range(layers)]
    across = max(widths, default=1)
    width = PAD * 2 + (across - 1) * COL_W + BOX_W
    height = PAD * 2 + (layers - 1) * ROW_H + BOX_H

    def pos(v: Vertex) -> tuple[float, float]:
        offset = (across - widths[v.layer]) * COL_W / 2  # centre short rows
        return PAD + offset + v.row * COL_W, PAD + v.layer * ROW_H

    parts = [f'<svg class="dag" viewBox="0 0 {width} {height}" width="{width}" role="img" '
             f'aria-label="pipeline graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path class="arrow" d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>']
    for a, b in g.edges:
        (x1, y1), (x2, y2) = pos(g.vertices[a]), pos(g.vertices[b])
        x1, x2, y1 = x1 + BOX_W / 2, x2 + BOX_W / 2, y1 + BOX_H
        mid = (y1 + y2) / 2
        parts.append(f'<path class="edge" d="M {x1:.0f} {y1:.0f} C {x1:.0f} {mid:.0f}, {x2:.0f} {mid:.0f}, '
                     f'{x2:.0f} {y2:.0f}" marker-end="url(#arrow)"/>')
    for v in g.vertices.values():
        x, y = pos(v)
        label = escape(_short(v.short or v.label))
        title = escape(f"{v.kind}: {v.label}" + (f" ({v.detail})" if v.detail else ""))
        rx = BOX_H / 2 if v.kind in ("dataset", "input") else 6
        shape = (f'<g class="v v-{v.kind}" data-kind="{v.kind}" data-name="{escape(v.label)}"><title>{title}</title>'
                 f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="{rx}"/>'
                 f'<text class="kind" x="{x + BOX_W / 2}" y="{y + 15}" text-anchor="middle">{escape(v.caption or v.kind)}</text>'
                 f'<text class="name" x="{x + BOX_W / 2}" y="{y + 33}" text-anchor="middle">{label}</text></g>')
        parts.append(f'<a href="{escape(v.href)}">{shape}</a>' if v.href else shape)
    parts.append("</svg>")
    return Markup("".join(parts))

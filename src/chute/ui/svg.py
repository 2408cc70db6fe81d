"""Server-rendered SVG: the daily chart of the overview and the pipeline graph.

No JavaScript: each picture is one <svg> with a viewBox, so it scales with the page. Every
piece of text goes through markupsafe.escape. Styling is in chute.css (classes only), which
keeps the Content-Security-Policy strict (no inline styles).
"""

from __future__ import annotations

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


# -- the overview chart ----------------------------------------------------------------------
def daily_chart(days: list[dict]) -> Markup:
    """Two panels over the same days: rows loaded (top) and files failed (bottom)."""
    width, left, right = 760, 48, 8
    top_h, bottom_h, gap, axis_h = 150, 50, 26, 22
    height = top_h + gap + bottom_h + axis_h
    n = max(len(days), 1)
    slot = (width - left - right) / n
    bar = max(slot * 0.7, 1)
    max_rows = max((d["rows_loaded"] for d in days), default=0) or 1
    max_failed = max((d["files_failed"] for d in days), default=0) or 1
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="rows loaded and files failed per day" preserveAspectRatio="xMidYMid meet">']
    parts.append(f'<text class="axis-title" x="{left}" y="11">rows loaded per day (max {_num(max_rows)})</text>')
    parts.append(f'<text class="axis-title" x="{left}" y="{top_h + gap - 4}">files failed per day '
                 f'(max {_num(max_failed) if any(d["files_failed"] for d in days) else 0})</text>')
    for y, label in ((16, _num(max_rows)), (top_h, "0")):
        parts.append(f'<text class="tick" x="{left - 6}" y="{y + 4}" text-anchor="end">{label}</text>')
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y}" y2="{y}"/>')
    base2 = top_h + gap + bottom_h
    parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{base2}" y2="{base2}"/>')
    label_every = max(1, round(n / 8))
    for i, d in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        day = d["day"]
        tip = escape(f'{day:%a %d %b}: {d["rows_loaded"]:,} rows loaded, {d["files_failed"]} files failed, '
                     f'{d["runs"]} runs ({d["runs_failed"]} failed)')
        h = (top_h - 16) * d["rows_loaded"] / max_rows
        parts.append(f'<g class="day" data-day="{day.isoformat()}"><title>{tip}</title>')
        parts.append(f'<rect class="bar-rows" x="{x:.1f}" y="{top_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}"/>')
        h2 = bottom_h * d["files_failed"] / max_failed
        parts.append(f'<rect class="bar-failed" x="{x:.1f}" y="{base2 - h2:.1f}" width="{bar:.1f}" height="{h2:.1f}"/>')
        if d["runs_failed"]:
            parts.append(f'<circle class="dot-failed" cx="{x + bar / 2:.1f}" cy="{top_h + 6}" r="3"/>')
        parts.append("</g>")
        if (i % label_every == 0 and n - 1 - i >= label_every / 2) or i == n - 1:  # no crowding at the end
            parts.append(f'<text class="tick" x="{x + bar / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                         f'{day:%d %b}</text>')
    parts.append("</svg>")
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

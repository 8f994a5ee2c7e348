"""build/<stack>/architecture.svg: the groups of preview/architecture.py as boxes in layers, hand-written SVG.

Layered like a Sugiyama drawing, kept small: a group's row is its depth in the (reduced) dependency graph, the
groups that wait for nothing at the bottom; an edge that skips rows passes through a slot of its own in each
row it crosses (a "dummy"), so no arrow runs through a box; rows are ordered by the mean position of their
neighbours. Text widths are estimated (no font metrics without a renderer), generously, so labels stay inside.
Output is a pure function of resources.json: sorted, no time, no random.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from .architecture import Group, Pod, direct, edges, groups, layers

FONT, TITLE_FONT, LINE = 12, 14, 16
CHAR, TITLE_CHAR = 0.57 * FONT, 0.62 * TITLE_FONT  # estimated glyph widths, on the wide side
PAD, GAP, ROW_GAP, DUMMY, POD_GAP, MARGIN, GUTTER = 10, 28, 46, 14, 10, 16, 24
HEADER, FOOTER = 52, 56
MAX_WIDTH = 860  # a box wider than this wraps its pods: GitHub shows a README image at most ~880 px wide
COLORS = {"gcp": ("#e8f0fe", "#4a7bd0"), "workload": ("#e6f4ea", "#3b8c52"), "pod": ("#ffffff", "#6d9a78")}
LEGEND = ("Boxes: the program's components (components/) and what each declares (type, name; ×N: N of one type).",
          "Arrow A → B: A is created after B (A uses it); waits implied by other arrows are not drawn.")


def text_width(text: str, char: float = CHAR) -> float:
    return len(text) * char


def _line_text(kind: str, names: str) -> str:
    return f"{kind}  {names}"


def _container_text(name: str, role: str) -> str:
    return f"{name}  ({role})" if role else name


@dataclass
class Box:
    key: str
    group: Group | None  # None: a dummy slot for an edge crossing this row
    width: float
    height: float
    x: float = 0.0
    y: float = 0.0
    row_bottom: float = 0.0
    columns: int = 1
    pod_sizes: list[tuple[float, float]] = field(default_factory=list)
    pod_offsets: list[tuple[float, float]] = field(default_factory=list)


def _pod_size(pod: Pod) -> tuple[float, float]:
    widths = [text_width(pod.title, TITLE_CHAR * FONT / TITLE_FONT)] + [
        text_width(_container_text(*c)) for c in pod.containers]
    return max(widths) + 2 * PAD, LINE * (len(pod.containers) + 1) + 2 * PAD


def _flow(sizes: list[tuple[float, float]], room: float) -> tuple[list[tuple[float, float]], float, float]:
    """Pods left to right, wrapping at `room`: their offsets, the width and the height they take."""
    offsets, x, y, row_height, width = [], 0.0, 0.0, 0.0, 0.0
    for w, h in sizes:
        if x and x + w > room:
            x, y, row_height = 0.0, y + row_height + POD_GAP, 0.0
        offsets.append((x, y))
        width, row_height = max(width, x + w), max(row_height, h)
        x += w + POD_GAP
    return offsets, width, y + row_height


def _measure(group: Group) -> Box:
    head = max(text_width(group.title, TITLE_CHAR), text_width(group.subtitle)) + 2 * PAD
    line_width = max((text_width(_line_text(*line)) for line in group.lines), default=0) + 2 * PAD
    box = Box(group.key, group, 0, 0)
    if group.pods:
        box.pod_sizes = [_pod_size(p) for p in group.pods]
        box.pod_offsets, pods_width, pods_height = _flow(box.pod_sizes, MAX_WIDTH - 2 * PAD)
        box.width = max(head, pods_width + 2 * PAD, line_width)
        box.columns = max(1, int((box.width - 2 * PAD + GUTTER) // (line_width - 2 * PAD + GUTTER))) if group.lines else 1
        rows = -(-len(group.lines) // box.columns)
        box.height = 44 + pods_height + PAD + LINE * rows + PAD
    else:
        box.width = max(head, line_width)
        box.height = 44 + LINE * len(group.lines) + PAD
    return box


def _order(rows: list[list[Box]], links: list[tuple[str, str]]) -> None:
    """Barycentre sweeps, down then up, a fixed number of times (deterministic: ties keep the sorted order)."""
    neighbours: dict[str, list[str]] = {}
    for a, b in links:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    for sweep in range(4):
        sequence = rows[1:] if sweep % 2 == 0 else rows[-2::-1]
        for row in sequence:
            position = {box.key: i for r in rows for i, box in enumerate(r)}
            def centre(box: Box) -> float:
                near = [position[n] for n in neighbours.get(box.key, []) if n in position]
                return sum(near) / len(near) if near else position[box.key]
            row.sort(key=lambda box: (centre(box), position[box.key]))


def _place(rows: list[list[Box]], least: float) -> tuple[float, float]:
    widths = [sum(b.width for b in row) + GAP * (len(row) - 1) for row in rows]
    canvas = max(widths + [least]) + 2 * MARGIN
    y = HEADER
    for row, width in zip(rows, widths):
        x = (canvas - width) / 2
        height = max(b.height for b in row)
        for box in row:
            box.x, box.y, box.row_bottom = x, y, y + height
            if box.group is None:
                box.height = height
            x += box.width + GAP
        y += height + ROW_GAP
    return canvas, y - ROW_GAP + FOOTER


def layout(resources: list[dict]) -> tuple[list[Box], list[list[tuple[float, float]]], float, float]:
    """Boxes placed, each drawn edge as its points (from the waiting group down to the one it waits for)."""
    found = groups(resources)
    pairs = sorted(direct(edges(resources)))
    depth = layers([g.key for g in found], set(pairs))
    top = max(depth.values(), default=0)
    rows: list[list[Box]] = [[] for _ in range(top + 1)]
    for group in sorted(found, key=lambda g: (g.title, g.key)):
        rows[top - depth[group.key]].append(_measure(group))
    chains, links = [], []
    for a, b in pairs:  # a waits for b: a sits higher
        chain = [a]
        for row in range(top - depth[a] + 1, top - depth[b]):
            slot = f"{a}->{b}#{row}"
            rows[row].append(Box(slot, None, DUMMY, 0))
            chain.append(slot)
        chain.append(b)
        chains.append(chain)
        links += list(zip(chain, chain[1:]))
    _order(rows, links)
    width, height = _place(rows, max(text_width(line) for line in LEGEND))
    boxes = {box.key: box for row in rows for box in row}
    return [b for row in rows for b in row], _route(chains, boxes), width, height


def _route(chains: list[list[str]], boxes: dict[str, Box]) -> list[list[tuple[float, float]]]:
    """Spread each box's ends along its bottom (edges out) and top (edges in), in the order of the far ends."""
    def spread(ends: dict[str, list[tuple[float, int]]]) -> dict[tuple[str, int], float]:
        where = {}
        for key, items in ends.items():
            box, items = boxes[key], sorted(items)
            for i, (_, chain) in enumerate(items):
                share = (i + 1) / (len(items) + 1) if box.group else 0.5
                where[(key, chain)] = box.x + box.width * (0.2 + 0.6 * share if box.group else share)
        return where

    outs: dict[str, list[tuple[float, int]]] = {}
    ins: dict[str, list[tuple[float, int]]] = {}
    for i, chain in enumerate(chains):
        nxt, prev = boxes[chain[1]], boxes[chain[-2]]
        outs.setdefault(chain[0], []).append((nxt.x + nxt.width / 2, i))
        ins.setdefault(chain[-1], []).append((prev.x + prev.width / 2, i))
    out_x, in_x = spread(outs), spread(ins)
    paths = []
    for i, chain in enumerate(chains):
        first, last = boxes[chain[0]], boxes[chain[-1]]
        start = out_x[(chain[0], i)]
        # Down to the row's bottom first: a curve leaving a short box would cut a taller neighbour's corner.
        points = [(start, first.y + first.height)] + ([(start, first.row_bottom)]
                                                     if first.row_bottom > first.y + first.height else [])
        for key in chain[1:-1]:
            slot = boxes[key]
            points += [(slot.x + slot.width / 2, slot.y), (slot.x + slot.width / 2, slot.y + slot.height)]
        points.append((in_x[(chain[-1], i)], last.y))
        paths.append(points)
    return paths


def _path(points: list[tuple[float, float]]) -> str:
    d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for (x1, y1), (x2, y2) in zip(points, points[1:]):
        if x1 == x2:
            d += f" L{x2:.1f},{y2:.1f}"
        else:
            mid = (y1 + y2) / 2
            d += f" C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}"
    return d


def _text(x: float, y: float, text: str, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>'


def _draw_lines(box: Box, top: float, out: list[str]) -> None:
    group = box.group
    rows = -(-len(group.lines) // box.columns)
    column = (box.width - 2 * PAD + GUTTER) / box.columns
    for i, (kind, names) in enumerate(group.lines):
        x, y = box.x + PAD + column * (i // rows), top + LINE * (i % rows) + 12
        out.append(f'<text x="{x:.1f}" y="{y:.1f}">{escape(kind)}<tspan fill="#666">  {escape(names)}</tspan></text>')


def _draw_group(box: Box, out: list[str]) -> None:
    group = box.group
    fill, stroke = COLORS["workload" if group.pods else "gcp"]
    out.append(f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" rx="8" '
               f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>')
    out.append(_text(box.x + PAD, box.y + 20, group.title, f' font-size="{TITLE_FONT}" font-weight="bold"'))
    out.append(_text(box.x + PAD, box.y + 36, group.subtitle, ' fill="#555"'))
    top = box.y + 44
    if group.pods:
        for pod, (width, height), (dx, dy) in zip(group.pods, box.pod_sizes, box.pod_offsets):
            x, y0 = box.x + PAD + dx, top + dy
            fill, stroke = COLORS["pod"]
            out.append(f'<rect x="{x:.1f}" y="{y0:.1f}" width="{width:.1f}" height="{height:.1f}" rx="5" '
                       f'fill="{fill}" stroke="{stroke}"/>')
            out.append(_text(x + PAD, y0 + PAD + 12, pod.title, ' font-weight="bold"'))
            for i, (name, role) in enumerate(pod.containers):
                y = y0 + PAD + LINE * (i + 1) + 12
                note = f'<tspan fill="#666">  ({escape(role)})</tspan>' if role else ""
                out.append(f'<text x="{x + PAD:.1f}" y="{y:.1f}">{escape(name)}{note}</text>')
        top += max(dy + h for (_, dy), (_, h) in zip(box.pod_offsets, box.pod_sizes)) + PAD
    _draw_lines(box, top, out)


def architecture_svg(resources: list[dict], stack: str) -> str:
    boxes, paths, width, height = layout(resources)
    heading = f"airflow-gke, stack {stack}: what pulumi up builds ({len(resources)} resources)"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="{FONT}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
           f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="white"/>',
           _text(MARGIN, 26, heading, ' font-size="16" font-weight="bold"')]
    for box in boxes:
        if box.group is not None:
            _draw_group(box, out)
    for points in paths:
        out.append(f'<path d="{_path(points)}" fill="none" stroke="#555" stroke-width="1.3" '
                   f'marker-end="url(#arrow)"/>')
    for i, line in enumerate(LEGEND):
        out.append(_text(MARGIN, height - 30 + 16 * i, line, ' fill="#444"'))
    out.append("</svg>")
    return "\n".join(out) + "\n"

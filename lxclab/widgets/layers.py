"""The layer explorer: an image's layers as a stack, its merged file tree, and what the layers waste.

A view of a `LayerStack` (lxclab.unionfs.model), built from plain ipywidgets (VBox, HTML,
Accordion, Tab) and HTML `<details>` elements, so that it renders in JupyterLab and in
static HTML exported with its widget state, with no custom JavaScript. It draws the model
it is given and reads nothing else. Layers are named as in the lessons, counted from the
bottom: "layer 1" is the base (index 0 of the model).
"""

from __future__ import annotations

import html
import math

import ipywidgets

from ..unionfs.model import ADDED, DELETED, MODIFIED, Hidden, LayerChanges, LayerStack, Node

MAX_TREE_NODES = 3000
MAX_CHANGES_SHOWN = 200
MAX_WASTE_SHOWN = 50
COLOURS = {ADDED: "#2ca02c", MODIFIED: "#ff7f0e", DELETED: "#d62728"}
SIGNS = {ADDED: "+", MODIFIED: "~", DELETED: "-"}
KIND_SUFFIX = {"dir": "/", "symlink": "@", "hardlink": " (hardlink)", "char": " (char dev)", "block": " (block dev)",
               "fifo": "|"}


def human_bytes(count: int) -> str:
    """A byte count for people: 512 B, 3.1 KiB, 12.0 MiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def percent_down(fraction: float) -> str:
    """A fraction as a percentage rounded down, so a little waste never reads as 100%."""
    return f"{math.floor(fraction * 1000) / 10:.1f}%"


def summary_html(stack: LayerStack, title: str) -> str:
    """The headline: how many layers, bytes stored and visible, wasted bytes, efficiency."""
    return (
        f"<div><b>{html.escape(title)}</b> &mdash; {len(stack.layers)} layers, "
        f"{human_bytes(stack.stored_bytes)} in files stored, {human_bytes(stack.visible_bytes)} visible, "
        f"<span style='color:{COLOURS[DELETED]}'>{human_bytes(stack.wasted_bytes)} wasted</span>, "
        f"<b>efficiency {percent_down(stack.efficiency)}</b></div>"
    )


def layer_name(index: int) -> str:
    """How the lessons name the layer at model index `index`: "layer 1" is the bottom one."""
    return f"layer {index + 1}"


def layer_title(layer: LayerChanges) -> str:
    """One accordion title: the layer's name, size, change counts and the build step that made it."""
    counts = " ".join(f"{SIGNS[k]}{layer.count(k)}" for k in (ADDED, MODIFIED, DELETED))
    step = layer.created_by if len(layer.created_by) <= 70 else layer.created_by[:67] + "..."
    return f"{layer_name(layer.index)}  {human_bytes(layer.size)}  {counts}  {step}".rstrip()


def layer_html(layer: LayerChanges) -> str:
    """A layer's details: its DiffID, markers, and the paths it added, modified and deleted."""
    lines = [f"<div><code>{html.escape(layer.diff_id or 'no DiffID')}</code></div>",
             f"<div>{html.escape(layer.created_by or '(no history)')}</div>"]
    lines += [f"<div>whiteout: <code>{html.escape(p)}</code></div>" for p in layer.whiteouts]
    lines += [f"<div>opaque directory: <code>{html.escape(p or '/')}/</code></div>" for p in layer.opaques]
    for path, kind, size in layer.changes[:MAX_CHANGES_SHOWN]:
        lines.append(f"<div style='color:{COLOURS[kind]}'>{SIGNS[kind]} <code>/{html.escape(path)}</code> "
                     f"{kind} {human_bytes(size) if size else ''}</div>")
    if len(layer.changes) > MAX_CHANGES_SHOWN:
        lines.append(f"<div>... and {len(layer.changes) - MAX_CHANGES_SHOWN} more changes</div>")
    return "\n".join(lines)


def _node_label(node: Node, opaque_in: dict[str, list[int]]) -> str:
    suffix = KIND_SUFFIX.get(node.entry.kind, "") if node.path else ""
    label = f"<code>{html.escape(node.name)}{suffix}</code>"
    if node.entry.kind == "symlink":
        label += f" &rarr; <code>{html.escape(node.entry.target)}</code>"
    layer = "below all layers" if node.layer < 0 else layer_name(node.layer)
    label += f" <small style='color:#555'>from {layer}"
    if node.entry.kind == "file":
        label += f", {human_bytes(node.entry.size)}"
    if node.shadows:
        label += ", shadows " + ", ".join(layer_name(v.layer) for v in node.shadows)
    if node.path in opaque_in:
        label += ", opaque in " + ", ".join(layer_name(i) for i in opaque_in[node.path])
    return label + "</small>"


def _hidden_label(hidden: Hidden) -> str:
    how = {"whiteout": "whiteout", "opaque": "opaque directory", "replaced": "replaced parent"}[hidden.how]
    return (f"<div style='color:{COLOURS[DELETED]}'><s><code>{html.escape(hidden.path.rpartition('/')[2])}</code></s>"
            f" <small>deleted by {layer_name(hidden.layer)} ({how}), was in "
            f"{', '.join(layer_name(v.layer) for v in hidden.versions)}</small></div>")


def tree_html(stack: LayerStack, limit: int = MAX_TREE_NODES) -> str:
    """The merged file tree as nested <details>, each entry with its layer, shadows and hidden neighbours."""
    opaque_in: dict[str, list[int]] = {}
    for layer in stack.layers:
        for path in layer.opaques:
            opaque_in.setdefault(path, []).append(layer.index)
    budget = [limit]
    return _directory_html(stack, stack.tree[""], opaque_in, budget, is_open=True)


def _directory_html(stack: LayerStack, node: Node, opaque_in: dict, budget: list[int], is_open: bool = False) -> str:
    parts = [f"<details{' open' if is_open else ''}><summary>{_node_label(node, opaque_in)}</summary>"
             "<div style='margin-left:1.2em'>"]
    for child in stack.children(node.path):
        if budget[0] <= 0:
            parts.append("<div>... (tree cut short)</div>")
            break
        budget[0] -= 1
        if child.entry.is_dir:
            parts.append(_directory_html(stack, child, opaque_in, budget))
        else:
            parts.append(f"<div>{_node_label(child, opaque_in)}</div>")
    parts.extend(_hidden_label(hidden) for hidden in stack.hidden_in(node.path))
    parts.append("</div></details>")
    return "".join(parts)


def waste_html(stack: LayerStack, limit: int = MAX_WASTE_SHOWN) -> str:
    """The paths that waste the most bytes (overwritten or deleted in a later layer)."""
    rows = [f"<tr><td><code>/{html.escape(p)}</code></td><td>{human_bytes(b)}</td></tr>" for p, b in stack.waste()[:limit]]
    if not rows:
        return "<div>No wasted bytes: no layer overwrites or deletes a file of another.</div>"
    return "<table><tr><th>path</th><th>wasted</th></tr>" + "".join(rows) + "</table>"


class LayerExplorer(ipywidgets.VBox):
    """An image's layers (top first), its merged file tree and its waste, as standard widgets."""

    def __init__(self, stack: LayerStack, title: str = "image", **kwargs):
        self.stack = stack
        layers = list(reversed(stack.layers))
        accordion = ipywidgets.Accordion(children=[ipywidgets.HTML(layer_html(layer)) for layer in layers])
        accordion.titles = tuple(layer_title(layer) for layer in layers)
        tabs = ipywidgets.Tab(children=[accordion, ipywidgets.HTML(tree_html(stack)), ipywidgets.HTML(waste_html(stack))])
        tabs.titles = ("Layers (top first)", "Files", "Waste")
        super().__init__(children=[ipywidgets.HTML(summary_html(stack, title)), tabs], **kwargs)

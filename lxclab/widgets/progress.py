"""Download progress in a notebook: one bar per blob, drawn as plain HTML in an ipywidgets box.

`WidgetProgress` implements `lxclab.progress.Progress`, so `pull(ref, progress=bar)` fills
it. The bars are HTML rather than `IntProgress` because reveal.js slides hide elements of
class `progress`; plain HTML also survives a static export with its widget state.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets

BAR_COLOUR = "#2c7fb8"
DONE_COLOUR = "#41ab5d"


def render_bar(description: str, done: int, total: int | None, state: str = "") -> str:
    """The HTML of one progress row: a label, a filled bar, bytes done of total, and a state word."""
    fraction = min(done / total, 1.0) if total else 0.0
    colour = DONE_COLOUR if state == "done" else BAR_COLOUR
    amount = f"{_size(done)} / {_size(total)}" if total else _size(done)
    return (
        '<div style="display:flex;align-items:center;gap:8px;font-family:monospace">'
        f'<span style="width:9em">{html.escape(description)}</span>'
        '<span style="flex:0 0 240px;height:10px;background:#e0e0e0;border-radius:3px">'
        f'<span style="display:block;height:10px;width:{fraction * 100:.1f}%;background:{colour};border-radius:3px">'
        "</span></span>"
        f"<span>{amount} {state}</span></div>"
    )


@dataclass
class _Row:
    widget: ipywidgets.HTML
    description: str
    total: int | None
    done: int = 0
    drawn: int = 0


class WidgetProgress:
    """A notebook progress display: one HTML bar per transfer, redrawn once per percent."""

    def __init__(self):
        self.box = ipywidgets.VBox()
        self._rows: dict[str, _Row] = {}

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)

    def start(self, key: str, description: str, total: int | None) -> None:
        """Add a bar for this transfer."""
        row = _Row(ipywidgets.HTML(render_bar(description, 0, total)), description, total)
        self._rows[key] = row
        self.box.children = (*self.box.children, row.widget)

    def update(self, key: str, done: int) -> None:
        """Redraw the bar if it moved by at least one percent."""
        row = self._rows[key]
        row.done = done
        if row.total and abs(done - row.drawn) * 100 < row.total:
            return
        row.widget.value = render_bar(row.description, done, row.total)
        row.drawn = done

    def finish(self, key: str) -> None:
        """Draw the bar as it ended: `done` if every byte arrived, else `stopped`."""
        row = self._rows[key]
        complete = row.total is None or row.done >= row.total
        row.widget.value = render_bar(row.description, row.done, row.total, "done" if complete else "stopped")


def _size(count: int) -> str:
    for unit in ("B", "kB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"

"""Figures drawn with matplotlib and no display: one style, deterministic SVG, files a speaker can save.

Every picture of the kit (resource graphs, diagrams) is a `matplotlib.figure.Figure` built in
`style()`, so a notebook's own matplotlib settings never change it. `svg` turns a figure into SVG
text that is the same byte for byte on every run (a fixed hash salt for its ids, no date, no
version, text kept as text), ready to inline in a page; `save` writes a PNG or SVG file; a
`Picture` shows a figure inline in Jupyter as SVG and says in words what it shows.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import matplotlib.style
from matplotlib.figure import Figure

from ..errors import LxclabError

STYLE = {
    "svg.hashsalt": "lxclab",  # ids of clip paths and markers derive from it: the same SVG every run
    "svg.fonttype": "none",  # text stays <text>: small, searchable, no embedded glyphs
    "font.family": "DejaVu Sans",  # the font matplotlib ships: the same text widths on every machine
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
NO_METADATA = {"svg": {"Date": None, "Creator": None}, "png": {"Software": None}}
# Left out of inline SVG: matplotlib's `*{...}` stylesheet, which would style the whole page, and its RDF metadata.
_NOT_INLINE = re.compile(r"<style[^>]*>.*?</style>|<metadata>.*?</metadata>\s*", re.S)
_LOCK = threading.RLock()  # matplotlib's settings are global: one figure is styled or saved at a time


def short_number(value: float) -> str:
    """A number for a label: at most three significant digits, whole numbers from 1000 on."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


@contextmanager
def style() -> Iterator[None]:
    """matplotlib's defaults plus lxclab's STYLE, for building or saving a figure, one thread at a time."""
    with _LOCK, matplotlib.style.context(["default", STYLE]):
        yield


def svg(figure: Figure) -> str:
    """The figure as an <svg> element to inline in HTML: no XML prolog, metadata or page-wide CSS; the same every run."""
    buffer = io.BytesIO()
    with style():
        figure.savefig(buffer, format="svg", metadata=NO_METADATA["svg"])
    text = buffer.getvalue().decode()
    return _NOT_INLINE.sub("", text[text.index("<svg"):])


def save(figure: Figure, path: str | Path) -> Path:
    """Write the figure to `path` as PNG or SVG, chosen by its suffix (for a speaker's slides)."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in NO_METADATA:
        raise LxclabError(f"cannot save a figure as {path.name}: name it .png or .svg")
    with style():
        figure.savefig(path, format=kind, metadata=NO_METADATA[kind], dpi=150)
    return path


class Picture:
    """A figure that Jupyter shows inline as SVG (also in static HTML), with a one-line text summary."""

    def __init__(self, figure: Figure, summary: str):
        self.figure = figure
        self.summary = summary

    def _repr_svg_(self) -> str:
        return svg(self.figure)

    def save(self, path: str | Path) -> Path:
        """Write the picture to `path` as PNG or SVG."""
        return save(self.figure, path)

    def __repr__(self) -> str:
        return self.summary

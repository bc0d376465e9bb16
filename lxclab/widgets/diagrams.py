"""Diagrams drawn from the real objects of a lesson, with matplotlib: each a pure function returning a Figure.

- `token_flow`: a sequence chart of a recorded registry exchange (go-vcr's `interactions`, as in
  `notebooks/data/dockerhub/`): client, registry and token server, one arrow per request and answer;
- `image_tree`: an index → one manifest per platform → its config and layers, media types shortened,
  digests abbreviated, sizes given, blobs that several platforms share marked;
- `namespace_map`: the namespaces of a process beside the notebook's, a shared one as one joined box,
  a new one highlighted.

Each figure's title says in words what it shows; `show(figure)` displays it inline as SVG (JupyterLab,
static HTML, slides) and `show(figure).save("flow.svg")` writes a file for a speaker.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .. import manifest
from ..manifest import Descriptor, Index, Manifest
from ..registry import parse_challenge
from . import figures

CLIENT, REGISTRY, TOKEN_SERVER = "client", "registry", "token server"
COLUMNS = (CLIENT, REGISTRY, TOKEN_SERVER)
LINE = 0.22  # inches per line of text in a diagram
ROW = 3.6  # lines per row of the image tree: a box of three lines and a gap
FONT_SIZE = 8
BOX_COLOUR, NEW_COLOUR, SHARED_COLOUR, EDGE_COLOUR = "#eef3fa", "#fde0c5", "#e3f1e0", "#5a6b7d"
SHORT_TYPES = {
    manifest.OCI_INDEX: "OCI index", manifest.DOCKER_LIST: "Docker manifest list",
    manifest.OCI_MANIFEST: "OCI manifest", manifest.DOCKER_MANIFEST: "Docker manifest v2",
    manifest.OCI_CONFIG: "OCI config", manifest.DOCKER_CONFIG: "Docker config",
    manifest.OCI_LAYER: "layer tar", manifest.OCI_LAYER_GZIP: "layer tar+gzip",
    manifest.OCI_LAYER_ZSTD: "layer tar+zstd", manifest.DOCKER_LAYER_GZIP: "Docker layer tar+gzip",
}
_NAMESPACE_ID = re.compile(r"\[(\d+)\]")


def show(figure: Figure) -> figures.Picture:
    """The figure, shown inline as SVG by Jupyter, its title as its text form; `.save(path)` writes a file."""
    return figures.Picture(figure, figure.get_suptitle())


# --- token flow -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    """One arrow of a sequence chart: from which column to which, what it says, and whether it answers."""

    sender: str
    receiver: str
    label: str
    answer: bool = False


def _header(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The first value of header `name` (any case) in go-vcr's {name: [values]} form, or None."""
    return next((values[0] for key, values in headers.items() if key.lower() == name.lower() and values), None)


def token_flow_messages(interactions: Iterable[Mapping]) -> list[Message]:
    """The arrows of a recorded exchange: each request from the client, each answer back to it."""
    messages, token_hosts = [], set()
    for interaction in interactions:
        request, response = interaction["request"], interaction["response"]
        url = urlsplit(request["url"])
        server = TOKEN_SERVER if url.netloc in token_hosts else REGISTRY
        messages.append(Message(CLIENT, server, _request_label(request, url)))
        challenge = _header(response.get("headers") or {}, "WWW-Authenticate")
        if challenge and (realm := parse_challenge(challenge).realm):
            token_hosts.add(urlsplit(realm).netloc)
        messages.append(Message(server, CLIENT, _answer_label(response, challenge), answer=True))
    return messages


def _request_label(request: Mapping, url) -> str:
    """`GET /path`, then its query parameters and whether it carries a token, one per line."""
    lines = [f"{request['method']} {url.path}"]
    lines += [f"{name}={value}" for name, value in parse_qsl(url.query)]
    authorization = _header(request.get("headers") or {}, "Authorization")
    if authorization:
        lines.append(f"Authorization: {authorization.split()[0]} …")
    return "\n".join(lines)


def _answer_label(response: Mapping, challenge: str | None) -> str:
    """The status, then what the answer brings: the challenge's parameters, a token, or the content's type."""
    lines = [str(response["code"])]
    if challenge:
        parsed = parse_challenge(challenge)
        lines[0] += f" + WWW-Authenticate: {parsed.scheme.capitalize()}"
        lines += [f"{name}={value}" for name, value in parsed.params.items()]
        return "\n".join(lines)
    body = _json_object(response.get("body") or "")
    if "token" in body:
        lines[0] += f" token (JWT, expires_in {body.get('expires_in', '?')} s)"
    elif content_type := _header(response.get("headers") or {}, "Content-Type"):
        lines[0] += f" {short_type(content_type)}"
    if digest := _header(response.get("headers") or {}, "Docker-Content-Digest"):
        lines.append(f"Docker-Content-Digest: {short_digest(digest)}")
    return "\n".join(lines)


def _json_object(text: str) -> dict:
    """`text` as a JSON object, or {} when it is not one."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def token_flow(interactions: Sequence[Mapping], title: str = "") -> Figure:
    """A sequence chart of a recorded token exchange: client, registry and token server, an arrow per message."""
    messages = token_flow_messages(interactions)
    hosts = {column: "" for column in COLUMNS}
    for interaction, request_message in zip(interactions, messages[::2]):
        hosts[request_message.receiver] = urlsplit(interaction["request"]["url"]).netloc
    heights = [m.label.count("\n") + 1.8 for m in messages]
    total = sum(heights) + 2.5
    figure, axes = _canvas(8.0, total, title or f"token flow: {len(interactions)} requests, "
                           f"{', '.join(h for h in hosts.values() if h)}")
    axes.set(xlim=(-0.6, 2.6), ylim=(total, 0))
    for x, column in enumerate(COLUMNS):
        _box(axes, x - 0.45, 0.2, 0.9, 1.6, f"{column}\n{hosts[column]}".strip(), BOX_COLOUR, gid=f"column-{x}")
        axes.plot([x, x], [1.8, total], color=EDGE_COLOUR, linewidth=0.8, linestyle=":")
    y = 2.0
    for message, height in zip(messages, heights):
        y += height
        _arrow(axes, COLUMNS.index(message.sender), COLUMNS.index(message.receiver), y - 0.3, message)
    return figure


def _arrow(axes: Axes, start: int, end: int, y: float, message: Message) -> None:
    """One message: an arrow from column `start` to `end` at height `y`, its label above it (answers dashed)."""
    axes.annotate("", xy=(end, y), xytext=(start, y), gid="answer" if message.answer else "request",
                  arrowprops={"arrowstyle": "-|>", "color": EDGE_COLOUR, "linewidth": 1.0,
                              "linestyle": "--" if message.answer else "-", "shrinkA": 0, "shrinkB": 0})
    axes.text((start + end) / 2, y - 0.15, message.label, ha="center", va="bottom", fontsize=FONT_SIZE,
              linespacing=1.2, color="#7a2e0e" if message.answer else "#1b3a5c",
              bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})  # lifelines pass behind the label


# --- image tree -------------------------------------------------------------------------------
def short_type(media_type: str) -> str:
    """A media type in a few words: `OCI index`, `layer tar+gzip`; unknown ones lose their `application/`."""
    bare = media_type.split(";")[0].strip()
    return SHORT_TYPES.get(bare, bare.removeprefix("application/"))


def short_digest(digest: str, length: int = 12) -> str:
    """A digest cut to its first `length` hex digits, like `sha256:1a2b3c4d5e6f…`."""
    algorithm, _, hex_digits = digest.partition(":")
    return f"{algorithm}:{hex_digits[:length]}…"


def short_size(size: int) -> str:
    """A size in bytes, KiB or MiB, three significant digits at most."""
    for unit, factor in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{figures.short_number(size / factor)} {unit}"
    return f"{size} B"


def describe(descriptor: Descriptor, kind: str = "") -> str:
    """A descriptor's box text: what it is (its short media type), its digest abbreviated, its size."""
    return f"{kind or short_type(descriptor.media_type)}\n{short_digest(descriptor.digest)}\n{short_size(descriptor.size)}"


def image_tree(index: Index, manifests: Iterable[Manifest], title: str = "") -> Figure:
    """The tree of an image: its index, a manifest per platform, each manifest's config and layers."""
    fetched = {m.digest: m for m in manifests}
    entries = [d for d in index.manifests if not d.is_attestation]
    blobs = Counter(blob.digest for m in fetched.values() for blob in (m.config, *m.layers))
    rows = [1 + len(fetched[d.digest].layers) if d.digest in fetched else 1 for d in entries]
    total = sum(rows) * ROW
    figure, axes = _canvas(9.0, total + 1, title or f"image tree: {short_type(index.media_type)} "
                           f"{short_digest(index.digest)}, {len(entries)} platforms, {len(fetched)} fetched")
    axes.set(xlim=(-0.1, 3.1), ylim=(total + 0.5, -0.5))
    index_middle = total / 2
    _box(axes, 0, index_middle - 1.5, 0.9, 3.0, describe(Descriptor(index.media_type, index.digest, len(index.raw))),
         BOX_COLOUR, gid="index")
    top = 0.0
    for entry, row_count in zip(entries, rows):
        middle = top + row_count * ROW / 2
        _link(axes, (0.9, index_middle), (1.05, middle))
        image = fetched.get(entry.digest)
        text = f"{entry.platform}\n{describe(entry)}" + ("" if image else "\n(not fetched)")
        height = 4.0 if image else 5.0
        _box(axes, 1.05, middle - height / 2, 0.9, height, text, BOX_COLOUR, gid=f"manifest-{entry.platform}")
        if image:
            children = [(image.config, "config")] + [(layer, f"layer {n}") for n, layer in enumerate(image.layers, 1)]
            for row, (blob, kind) in enumerate(children):
                shared = blobs[blob.digest] > 1
                _link(axes, (1.95, middle), (2.1, top + (row + 0.5) * ROW))
                label = f"{kind}: {describe(blob)}" + (" · shared" if shared else "")
                _box(axes, 2.1, top + row * ROW + 0.2, 0.95, ROW - 0.4, label, SHARED_COLOUR if shared else BOX_COLOUR,
                     gid=f"{kind.replace(' ', '-')}-{entry.platform}")
        top += row_count * ROW
    return figure


def _link(axes: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A line from a parent box's right edge to a child box's left edge."""
    axes.plot([start[0], (start[0] + end[0]) / 2, (start[0] + end[0]) / 2, end[0]],
              [start[1], start[1], end[1], end[1]], color=EDGE_COLOUR, linewidth=0.8)


# --- namespaces -------------------------------------------------------------------------------
def namespace_number(link: str) -> str:
    """The inode number in a /proc/PID/ns link's text, like `4026531836` in `pid:[4026531836]`."""
    found = _NAMESPACE_ID.search(link)
    return found.group(1) if found else link


def namespace_map(host: Mapping[str, str], process: Mapping[str, str], names: tuple[str, str] = ("notebook", "container"),
                  numbers: bool = True, title: str = "") -> Figure:
    """A row per namespace kind: one joined box where the process shares the host's, two where it has a new one."""
    kinds = sorted(set(host) & set(process))
    new = [kind for kind in kinds if host[kind] != process[kind]]
    figure, axes = _canvas(6.0, 2.5 + 2.2 * len(kinds), title or f"namespaces: {len(new)} new of {len(kinds)} "
                           f"({', '.join(new) or 'none'}), the rest shared")
    axes.set(xlim=(0, 2), ylim=(2.5 + 2.2 * len(kinds), 0))
    for x, name in enumerate(names):
        axes.text(x + 0.5, 1.2, name, ha="center", va="center", fontsize=FONT_SIZE + 1, fontweight="bold")
    for row, kind in enumerate(kinds):
        y = 2.0 + 2.2 * row
        if kind in new:
            for x, ids, colour in ((0, host, BOX_COLOUR), (1, process, NEW_COLOUR)):
                label = f"{kind}" + (f" [{namespace_number(ids[kind])}]" if numbers else "") + ("\nnew" if x else "")
                _box(axes, x + 0.05, y, 0.9, 1.8, label, colour, gid=f"{kind}-{names[x]}")
        else:
            label = f"{kind}" + (f" [{namespace_number(host[kind])}]" if numbers else "") + "\nshared"
            _box(axes, 0.05, y, 1.9, 1.8, label, SHARED_COLOUR, gid=f"{kind}-shared")
    return figure


# --- drawing helpers --------------------------------------------------------------------------
def _canvas(width: float, lines: float, title: str) -> tuple[Figure, Axes]:
    """A figure `width` inches wide and tall enough for `lines` lines of text, one bare Axes, and its title."""
    with figures.style():
        figure = Figure(figsize=(width, lines * LINE + 0.4))
        axes = figure.add_axes((0.01, 0.01, 0.98, 1 - 0.4 / (lines * LINE + 0.4)))
        axes.set_axis_off()
        figure.suptitle(title, x=0.01, ha="left", y=0.995, fontsize=FONT_SIZE + 1, fontweight="bold")
    return figure, axes


def _box(axes: Axes, x: float, y: float, width: float, height: float, text: str, colour: str, gid: str) -> None:
    """A rounded box from (x, y) of `width` and `height` (data units, y downwards) with `text` centred in it."""
    axes.add_patch(FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0,rounding_size=0.05",
                                  facecolor=colour, edgecolor=EDGE_COLOUR, linewidth=0.8, gid=gid,
                                  mutation_aspect=8))
    axes.text(x + width / 2, y + height / 2, text, ha="center", va="center", fontsize=FONT_SIZE, linespacing=1.2,
              gid=f"{gid}-text")

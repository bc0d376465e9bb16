"""The talk deck: run the slides notebook's live demos, then make reveal.js slides that work offline.

    python tools/slides.py [--out DIR] [--no-execute]   default: slides/lxclab-talk.ipynb → _build/slides
    python tools/slides.py --record                     run the demos (as root) and store each one's output
                                                        in slides/data/talk-demos.json, the deck's fallback

The notebook (slides/lxclab-talk.ipynb, cells tagged with nbconvert's `slideshow`
metadata) is executed against the classroom registry that $LXCLAB_HOME and
$LXCLAB_REGISTRY_PORT / $LXCLAB_TOKEN_PORT name (`make slides` brings up the lesson
classroom), its widget state is stored, and nbconvert's reveal template turns it into
DIR/lxclab-talk.html. reveal.js (with its `white` theme, the one that loads no web fonts),
require.js and the widget manager are copied from node_modules beside the page, and the
template's CDN scripts (jQuery, MathJax, mermaid) are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import SlidesExporter

from export import NODE_MODULES, ROOT, STATIC, copy_files, install_widget_assets, offline_exporter, require_assets

DECK = ROOT / "slides/lxclab-talk.ipynb"
RECORDED = ROOT / "slides/data/talk-demos.json"  # each live demo's output, shown when it cannot run live
DEMO = re.compile(r'^if live\("(\w+)"', re.M)  # a demo cell: `if live("name", ...):`
REVEAL = NODE_MODULES / "reveal.js"
REVEAL_FILES = {  # folder inside reveal.js → files the deck needs
    "dist": ("reveal.js", "reveal.css"),
    "dist/theme": ("white.css",),
    "dist/theme/fonts/source-sans-pro": ("source-sans-pro.css", "*.woff"),
    "plugin/notes": ("notes.js",),
}
CELL_TIMEOUT = 300
DECK_SIZE = ("1200", "900")  # reveal.js scales this canvas to the screen: room for code and a widget

# The reveal page without its CDN scripts; Reveal started by require.js from the local copy. require.js gives
# up on a module after 7 s unless told otherwise; a local file that is missing fails at once anyway, so the
# deck waits as long as a slow machine needs (in a TCG VM reveal.js took longer than 7 s to load).
# ipywidgets' progress bars have class `progress`, which reveal.css hides: show them again.
OFFLINE_DECK = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_jquery -%}{%- endblock html_head_js_jquery -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
<style>
.reveal .jupyter-widgets .progress { display: flex; position: static; height: auto; width: auto; background: none; }
.reveal .jupyter-widgets, .reveal .widget-tab .lm-TabBar-tab { font-size: 16px; line-height: 1.3; }
.reveal pre { box-shadow: none; }
:root { --jp-code-font-size: 17px; --jp-cell-prompt-width: 80px; }
</style>
{%- endblock html_head_css -%}
{% block footer_js %}
<script>
require({waitSeconds: 0}, ["{{ reveal_url_prefix }}/dist/reveal.js", "{{ reveal_url_prefix }}/plugin/notes/notes.js"],
  function (Reveal, RevealNotes) {
    Reveal.initialize({controls: true, progress: true, history: true, transition: "{{ reveal_transition }}",
                       slideNumber: "c/t", plugins: [RevealNotes], width: {{ reveal_width }}, height: {{ reveal_height }}});
    window.lxclabReveal = Reveal;
  });
</script>
{% endblock footer_js %}
"""


def execute_deck(notebook_path: Path, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Run every demo of the deck in a fresh kernel (in the deck's folder) and keep outputs and widget state."""
    notebook = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(notebook_path.parent)}})
    client.execute(env=env or dict(os.environ), cwd=str(notebook_path.parent))
    return notebook


def install_reveal(out_dir: Path) -> str:
    """Copy the parts of reveal.js the deck uses into `out_dir/_static/reveal.js`; return that URL prefix."""
    require_assets(REVEAL / "dist/reveal.js")
    for folder, patterns in REVEAL_FILES.items():
        copy_files(REVEAL / folder, patterns, out_dir / STATIC / "reveal.js" / folder)
    return f"{STATIC}/reveal.js"


def write_deck(notebook: nbformat.NotebookNode, out_dir: Path, name: str = DECK.stem) -> Path:
    """Write `out_dir/<name>.html`, reveal.js slides of an executed notebook, every script served from `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    urls = install_widget_assets(out_dir)
    exporter = offline_exporter(SlidesExporter, OFFLINE_DECK, urls, template_name="reveal",
                                reveal_url_prefix=install_reveal(out_dir), reveal_theme="white",
                                reveal_width=DECK_SIZE[0], reveal_height=DECK_SIZE[1])
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": "lxclab: docker from scratch"}})
    page = out_dir / f"{name}.html"
    page.write_text(body, encoding="utf-8")
    return page


def build_deck(out_dir: Path, notebook_path: Path = DECK, env: dict[str, str] | None = None,
               execute: bool = True) -> Path:
    """Execute the deck (unless told not to) and write its slides into `out_dir`; returns the page."""
    notebook = execute_deck(notebook_path, env) if execute else nbformat.read(notebook_path, as_version=4)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out_dir / notebook_path.name)  # the executed deck, with outputs and widget state
    return write_deck(notebook, out_dir, notebook_path.stem)


def recorded_demos(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """The text each demo cell of an executed deck printed, by demo name; a demo that failed or printed nothing raises."""
    recorded = {}
    for cell in notebook.cells:
        found = DEMO.search(cell.source) if cell.cell_type == "code" else None
        if found:
            text = "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
            if not text or any(out.output_type == "error" for out in cell.outputs) or "needs root" in text:
                raise RuntimeError(f"demo {found.group(1)!r} did not run live (run --record as root): {text!r}")
            recorded[found.group(1)] = text
    return recorded


def record(notebook_path: Path = DECK, target: Path = RECORDED) -> Path:
    """Run the deck's demos and store each one's output in `target`, the fallback the deck shows."""
    target.write_text(json.dumps(recorded_demos(execute_deck(notebook_path)), indent=1, ensure_ascii=False) + "\n")
    return target


def main(argv: list[str]) -> int:
    """Build the deck as `argv` says and print where it went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build/slides")
    parser.add_argument("--no-execute", action="store_true", help="convert the notebook as stored, demos not run")
    parser.add_argument("--record", action="store_true", help=f"store each demo's output in {RECORDED.name}")
    args = parser.parse_args(argv)
    print(record() if args.record else build_deck(args.out, execute=not args.no_execute))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

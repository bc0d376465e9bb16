"""Static HTML of executed notebooks whose widgets still render, with no network at all.

    python tools/export.py [NOTEBOOK...] [--out DIR]   default: every lesson, into _build/html

nbconvert's `lab` template, with the widget state stored in the notebook's metadata, draws
widgets in a page through the widget manager (`@jupyter-widgets/html-manager`'s
embed-amd.js) loaded by require.js. By default both come from a CDN, and the page also
loads MathJax and mermaid from one. Here both scripts are copied from node_modules (npm,
see package.json) beside the page (require.js into `_static/`, the manager and its icon
fonts into `@jupyter-widgets/`, where its stylesheets look), and the CDN scripts are left out, so
the page works offline: on a workshop laptop, from a USB stick, or in a browser test that
blocks the network.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import jinja2
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
REQUIRE_JS = NODE_MODULES / "requirejs/require.js"
WIDGET_MANAGER = NODE_MODULES / "@jupyter-widgets/html-manager/dist"
WIDGET_MANAGER_FILES = ("embed-amd.js", "*.woff2")  # the script and its icon fonts (chromium and firefox take woff2)
# The manager's stylesheets ask for their fonts relative to the page, at these two folders (npm's layout).
WIDGET_FONT_DIRS = ("@jupyter-widgets", "@jupyter-widgets/html-manager/dist")
STATIC = "_static"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# The lab page minus the scripts it would fetch from a CDN (lessons use neither math nor mermaid).
OFFLINE_PAGE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def require_assets(*paths: Path) -> None:
    """Fail with the fix when the npm packages the page needs are not installed."""
    missing = [str(p.relative_to(ROOT)) for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: install the offline JavaScript with `npm ci` "
                         f"in {ROOT} (scripts/setup.sh does it)")


def copy_files(source: Path, patterns: tuple[str, ...], target: Path) -> None:
    """Copy the files of `source` that match `patterns` into `target`, unless an identical-size copy is there."""
    target.mkdir(parents=True, exist_ok=True)
    for pattern in patterns:
        for path in source.glob(pattern):
            copy = target / path.name
            if not copy.exists() or copy.stat().st_size != path.stat().st_size:
                shutil.copyfile(path, copy)


def install_widget_assets(out_dir: Path) -> dict[str, str]:
    """Copy require.js and the widget manager (with its fonts) into `out_dir`; return their URLs relative to a page there."""
    require_assets(REQUIRE_JS, WIDGET_MANAGER / "embed-amd.js")
    copy_files(REQUIRE_JS.parent, (REQUIRE_JS.name,), out_dir / STATIC)
    copy_files(WIDGET_MANAGER, ("*.woff2",), out_dir / WIDGET_FONT_DIRS[0])
    copy_files(WIDGET_MANAGER, WIDGET_MANAGER_FILES, out_dir / WIDGET_FONT_DIRS[1])
    return {"require_js_url": f"{STATIC}/require.js", "widget_renderer_url": f"{WIDGET_FONT_DIRS[1]}/embed-amd.js"}


def offline_exporter(exporter_class: type[HTMLExporter], page_template: str, urls: dict[str, str],
                     **options) -> HTMLExporter:
    """An nbconvert HTML exporter that renders `page_template` and takes its scripts from local `urls`."""
    loader = jinja2.DictLoader({"lxclab-offline.html.j2": page_template})
    return exporter_class(extra_loaders=[loader], template_file="lxclab-offline.html.j2", **urls, **options)


def widget_problem(notebook: nbformat.NotebookNode) -> str | None:
    """Why the widgets of `notebook` would not render statically, or None: views need stored widget state."""
    views = any(WIDGET_VIEW in output.get("data", {}) for cell in notebook.cells
                for output in cell.get("outputs", []))
    if views and WIDGET_STATE not in notebook.metadata.get("widgets", {}):
        return "it shows widgets but stores no widget state: execute it with nbclient or nbconvert --execute first"
    return None


def export_html(notebook_path: Path, out_dir: Path) -> Path:
    """Write `out_dir/<name>.html` from an executed notebook, widgets included, scripts from `out_dir/_static`."""
    notebook = nbformat.read(notebook_path, as_version=4)
    problem = widget_problem(notebook)
    if problem:
        raise SystemExit(f"cannot export {notebook_path}: {problem}")
    exporter = offline_exporter(HTMLExporter, OFFLINE_PAGE, install_widget_assets(out_dir), template_name="lab")
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": notebook_path.stem}})
    page = out_dir / f"{notebook_path.stem}.html"
    page.write_text(body, encoding="utf-8")
    return page


def main(argv: list[str]) -> int:
    """Export the notebooks named in `argv` (default: every lesson) and print where each page went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "_build/html")
    args = parser.parse_args(argv)
    for notebook in args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        print(export_html(notebook, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

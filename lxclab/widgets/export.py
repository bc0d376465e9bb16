"""Save widgets as a standalone HTML page that renders offline, with their state embedded.

The page loads the Jupyter widget manager (`@jupyter-widgets/html-manager`) and require.js
from local files (npm's node_modules), never from a CDN, so a lesson's layer explorer or
resource graph can be read in a browser without a kernel or a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ipywidgets
from ipywidgets.embed import dependency_state, embed_minimal_html

from ..errors import LxclabError

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
WIDGET_MANAGER = "@jupyter-widgets/html-manager/dist/embed-amd.js"
REQUIRE_JS = "requirejs/require.js"


def save_offline_html(widgets: Sequence[ipywidgets.Widget], page: Path, node_modules: Path = NODE_MODULES,
                      title: str = "lxclab") -> Path:
    """Write `widgets` with only their own state to `page`, loading scripts from `node_modules`; needs `npm install`."""
    manager, require = node_modules / WIDGET_MANAGER, node_modules / REQUIRE_JS
    missing = [str(path) for path in (manager, require) if not path.is_file()]
    if missing:
        raise LxclabError(f"cannot export widgets offline: {', '.join(missing)} missing; run `npm install` "
                          "in the lxclab checkout (./kit setup does it)")
    embed_minimal_html(page, views=list(widgets), state=dependency_state(list(widgets)), requirejs=False,
                       embed_url=manager.as_uri(), title=title)
    script = f'<script src="{require.as_uri()}"></script>'
    page.write_text(page.read_text().replace("<body>", f"<body>\n{script}", 1))
    return page

"""The engine: whole operations composed from the layers below (pull, push, and later run).

Each function here is one `lxclab` command: `pull` fetches and records an image, `push`
uploads a stored one.
"""

from .pull import pull
from .push import push

__all__ = ["pull", "push"]

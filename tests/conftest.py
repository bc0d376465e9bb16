"""Shared fixtures: each lives in its own tests/fixture_*.py module and is imported here."""

from fixture_rootfs import busybox_rootfs  # noqa: F401
from fixture_classroom import classroom, short_token_classroom  # noqa: F401
from fixture_lxc import lxcpath, make_container  # noqa: F401
from fixture_seed import seed_layout, seeded_classroom  # noqa: F401
from fixture_images import lxclab_home, pushed_image  # noqa: F401
from fixture_kernel import world_readable_rootfs  # noqa: F401
from fixture_nobody import nobody_python  # noqa: F401

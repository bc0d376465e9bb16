"""lxclab: rebuild `docker pull` and `docker run` from first principles, as a Python teaching kit.

The modules follow the journey of an image, each importing only the layers below it (the
table in README.md, which tests/test_layering.py enforces): data (reference, manifest) →
system (_libc, procfs, paths) → two columns that never import each other, I/O (registry,
store, layers, unionfs) and kernel (_linux, chroot, namespaces, cgroups, network, lxc) →
engine, the only module that joins them → tools (cli, widgets, doctor, classroom).
"""

__version__ = "0.1.0"

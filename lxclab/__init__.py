"""lxclab: rebuild `docker pull` and `docker run` from first principles, as a Python teaching kit.

The modules follow the journey of an image, each importing only the layers below it:
reference, manifest (pure data) → registry, store, layers, unionfs (I/O) → _linux, chroot,
namespaces, cgroups, network, lxc (kernel) → engine → widgets, cli.
"""

__version__ = "0.1.0"

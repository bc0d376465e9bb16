"""The classroom registry: a real registry plus lxclab's token server, offline, for workshops.

`Classroom(...).up()` starts Debian's `docker-registry` with token authentication and the
token server that signs its JWTs, the same protocol as registry-1.docker.io and
auth.docker.io. A tool beside the library: the library only ever talks to it over HTTP.
"""

from .server import Classroom, ClassroomStatus

__all__ = ["Classroom", "ClassroomStatus"]

"""`python -m lxclab.classroom`: the classroom's token server, as `Classroom.up()` starts it.

Run from here rather than as `-m lxclab.classroom.tokenserver`, which the package has
already imported by then (runpy warns of that).
"""

import sys

from .tokenserver import main

sys.exit(main())

"""The build track: learners write the runtime themselves, one level at a time, and these check it.

Each level of `notebooks/build/` replaces one part of lxclab with the learner's own function:
B1 the token dance, B2 the walk from index to config, B3 layers with whiteouts, B4 the
overlay mount, B5 the isolated process, B6 cgroup limits, B7 capabilities, and B8 puts them
together as `mydocker run`. Which module to use:
- `feedback`: how a check speaks (✓ lines, plain-language hints as ExerciseError);
- `levels`: `save_level` keeps a learner's passing functions, `load_level` hands them (or the
  reference checkpoint, for a learner who is behind) to the next level;
- `checkpoints`: the reference solution of every level, the named checkpoints;
- `registry_checks`, `layer_checks`, ...: one check per exercise, against the library or the kernel.
"""

from .feedback import ExerciseError
from .levels import load_level, save_level

__all__ = ["ExerciseError", "load_level", "save_level"]

"""Python children that never import from the directory they were started in.

`python -m MODULE` and `python -c` put the current directory first on `sys.path`. The engine
runs as root and is often started in a directory others can write to (/tmp, a shared
checkout): a planted `engine/` or `multiprocessing/` there would run as root in every child.
Python 3.11's `-P` (and `PYTHONSAFEPATH`, which children inherit) leaves the directory out.
"""

from __future__ import annotations

import os
import sys

#: The variable every Python started below this process reads: do not prepend the cwd.
SAFE_PATH_VARIABLE = "PYTHONSAFEPATH"
#: Its value as the user gave it (None: unset), for the user's own commands.
_USERS_VALUE = os.environ.get(SAFE_PATH_VARIABLE)


def seal_python_path() -> None:
    """Make every Python this process starts, directly or through multiprocessing's spawn
    (`python -c ...`), leave the current directory off its `sys.path`. Entry points call it
    first thing."""
    os.environ[SAFE_PATH_VARIABLE] = "1"


def user_environment() -> dict[str, str]:
    """The environment for a command the user named (`lab exec`, `ns exec`, a container's
    application): as the user gave it. Sealed, their `python script.py` would not find the
    modules beside the script."""
    environment = dict(os.environ)
    if _USERS_VALUE is None:
        environment.pop(SAFE_PATH_VARIABLE, None)
    else:
        environment[SAFE_PATH_VARIABLE] = _USERS_VALUE
    return environment


def python_module_command(module: str, *args: str) -> list[str]:
    """`python -P -m MODULE ARGS...` with this interpreter: the one way we start our modules,
    so that none of them can be shadowed by a file in the caller's directory."""
    return [sys.executable, "-P", "-m", module, *args]

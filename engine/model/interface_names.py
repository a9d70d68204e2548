"""Interface names as the kernel takes them: at most 15 bytes (IFNAMSIZ - 1).

The kernel's ioctls and packet sockets take a 16-byte field; a longer name cut to fit names a
different interface (`eth0-backup-link` would be `eth0-backup-lin`), so it is refused where a
name enters, with the field it came in."""

from __future__ import annotations

from engine.model.errors import LinkshaperError
from engine.model.validation_errors import quoted

#: The kernel's IFNAMSIZ less its terminating NUL.
MAX_INTERFACE_NAME = 15


class InterfaceNameError(LinkshaperError):
    """A name no interface can have; its one line names the field and why."""


def check_interface_name(name: str, field: str) -> str:
    """NAME if an interface can be called so; else InterfaceNameError naming FIELD."""
    size = len(name.encode())
    if size == 0:
        raise InterfaceNameError(f"{field}: an interface name, not an empty one")
    if size > MAX_INTERFACE_NAME:
        raise InterfaceNameError(
            f"{field}: {quoted(name)} is {size} bytes; an interface name is at most "
            f"{MAX_INTERFACE_NAME} (a longer one would be cut to another interface's name)"
        )
    return name

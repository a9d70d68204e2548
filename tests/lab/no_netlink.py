"""Run a command where the kernel refuses it every netlink socket (EPERM), as a sandbox's
seccomp profile may: `python no_netlink.py COMMAND...`; a command that starts with
`ip netns exec NAME` (which needs netlink itself) is run in that namespace without it.
For the fast path's fallback test: the engine, refused tc's netlink, must say so and
forward every frame itself."""

from __future__ import annotations

import ctypes
import os
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
AUDIT_ARCH_X86_64 = 0xC000_003E
SYS_SOCKET = 41
AF_NETLINK = 16
ALLOW = 0x7FFF_0000
REFUSE = 0x0005_0000 | 1  # SECCOMP_RET_ERRNO | EPERM
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06


def refuse_netlink() -> None:
    """A seccomp filter on this process (and what it runs): socket(AF_NETLINK, ...) fails."""
    program = [
        (LD_W_ABS, 0, 0, 4),  # the architecture
        (JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        (LD_W_ABS, 0, 0, 0),  # the system call
        (JEQ_K, 0, 3, SYS_SOCKET),
        (LD_W_ABS, 0, 0, 16),  # its first argument: the address family
        (JEQ_K, 0, 1, AF_NETLINK),
        (RET_K, 0, 0, REFUSE),
        (RET_K, 0, 0, ALLOW),
    ]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
    fprog = ctypes.create_string_buffer(struct.pack("HL", len(program), ctypes.addressof(code)))
    libc = ctypes.CDLL(None, use_errno=True)
    zero = ctypes.c_ulong(0)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), zero, zero, zero) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    mode, where = ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.c_void_p(ctypes.addressof(fprog))
    if libc.prctl(PR_SET_SECCOMP, mode, where, zero, zero) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


if __name__ == "__main__":
    if os.uname().machine != "x86_64":
        sys.exit("no_netlink.py: x86_64 only")
    command = sys.argv[1:]
    if command[:3] == ["ip", "netns", "exec"]:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        from engine.daemon.hosted import enter_netns

        enter_netns(command[3])
        command = command[4:]
    refuse_netlink()
    os.execvp(command[0], command)

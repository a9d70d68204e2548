"""Which qdiscs and tc actions this kernel really takes, tried in a network namespace that
exists only as long as one child process: `probe()` starts `python -m engine.doctor.tc_probe`
in a namespace of its own (unshare(CLONE_NEWNET) before exec), which makes a veth pair there,
adds and removes each qdisc with `tc`, and prints what happened as JSON. When the child ends
the namespace and its veths are gone with it, whatever happens to either process: nothing is
named, so nothing can be left behind (not even after a SIGKILL), and the host's own
interfaces are never touched.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

from engine.kernel.libc import libc
from engine.kernel.python_path import python_module_command

CLONE_NEWNET = 0x40000000
#: How long the child may take for every probe together (each `tc` call takes milliseconds;
#: loading a module on first use, a little more).
PROBE_TIMEOUT = 30.0
DEVICE, PEER = "lsdoctor0", "lsdoctor1"

#: check name -> what `tc qdisc add dev DEVICE` is given to add it.
QDISCS: dict[str, list[str]] = {
    "qdisc_netem": ["root", "netem", "delay", "1ms"],
    "qdisc_htb": ["root", "handle", "1:", "htb", "default", "10"],
    "qdisc_tbf": ["root", "tbf", "rate", "1mbit", "burst", "1600", "latency", "50ms"],
    "qdisc_fq_codel": ["root", "fq_codel"],
    "qdisc_clsact": ["clsact"],
}
#: The mirred action: every frame arriving on DEVICE redirected out of PEER.
MIRRED = ["parent", "ffff:", "protocol", "all", "u32", "match", "u32", "0", "0",
          "action", "mirred", "egress", "redirect", "dev", PEER]  # fmt: skip
NAMES = (*QDISCS, "action_mirred")


def _private_netns() -> None:
    """In the child, before exec: a network namespace of its own."""
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def probe() -> dict[str, str | None]:
    """Each of NAMES: None where the kernel took it, else why not (tc's own words). OSError
    when no private namespace can be made (that needs CAP_SYS_ADMIN) or the probe failed."""
    try:  # preexec_fn runs between fork and exec: safe here, doctor starts no threads
        done = subprocess.run(
            python_module_command("engine.doctor.tc_probe"),
            preexec_fn=_private_netns,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
    except subprocess.SubprocessError as exc:  # preexec_fn failed: no namespace
        raise OSError(f"cannot make a private network namespace ({exc})") from None
    if done.returncode != 0:
        raise OSError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    answer: dict[str, str | None] = json.loads(done.stdout)
    return answer


def _tc(*args: str) -> str | None:
    """None if `tc`/`ip` took it, else its first line of complaint."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=10)
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[0] if lines else f"exit {done.returncode}"


def _probe_here() -> dict[str, str | None]:
    """In the child's own namespace: the pair, then each qdisc added and removed again."""
    trouble = _tc("ip", "link", "add", DEVICE, "type", "veth", "peer", "name", PEER)
    if trouble is not None:
        raise OSError(f"no veth pair: {trouble}")
    for device in (DEVICE, PEER):
        _tc("ip", "link", "set", device, "up")
    results: dict[str, str | None] = {}
    for name, args in QDISCS.items():
        results[name] = _tc("tc", "qdisc", "add", "dev", DEVICE, *args)
        if results[name] is None:
            where = ["clsact"] if args == ["clsact"] else ["root"]
            _tc("tc", "qdisc", "del", "dev", DEVICE, *where)
    trouble = _tc("tc", "qdisc", "add", "dev", DEVICE, "ingress")
    if trouble is not None:
        results["action_mirred"] = f"no ingress qdisc to attach it to: {trouble}"
    else:
        results["action_mirred"] = _tc("tc", "filter", "add", "dev", DEVICE, *MIRRED)
        _tc("tc", "qdisc", "del", "dev", DEVICE, "ingress")
    _tc("ip", "link", "del", DEVICE)
    return results


if __name__ == "__main__":
    try:
        print(json.dumps(_probe_here()))
    except (OSError, subprocess.SubprocessError) as exc:
        sys.exit(str(exc))

"""`linkshaper doctor` run for real in the lab's box, as root beside a real engine (control
socket and HTTP API), and as nobody: the version lines, the qdisc lines against what `tc`
itself takes on this kernel (tried here independently, on a veth pair of the test's own in
the lab's client namespace), and the capabilities a user without them is told how to get."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.lab.harness import EngineProcess
from engine.lab.lab import INNER, OUTER, Lab
from engine.model.version import __version__

pytestmark = [pytest.mark.lab, pytest.mark.shared_lab]

LINKSHAPER = str(Path(sys.executable).parent / "linkshaper")
PORT = 8093
TOKEN = "doctor-lab-token"
#: doctor's check -> the arguments of `tc qdisc add dev tp0` that try the same thing.
TC_TRIES = {
    "qdisc_netem": ["root", "netem", "delay", "5ms"],
    "qdisc_htb": ["root", "handle", "1:", "htb"],
    "qdisc_tbf": ["root", "tbf", "rate", "10mbit", "burst", "3000", "limit", "30000"],
    "qdisc_fq_codel": ["root", "fq_codel"],
    "qdisc_clsact": ["clsact"],
}
LINE = re.compile(r"^(ok|missing|warn) +(needed +)?(\S+)  +(.*)$")


def lines_of(text: str) -> dict[str, tuple[str, str]]:
    """doctor's text: check name -> (status, the rest of its line)."""
    found = {}
    for line in text.splitlines():
        if match := LINE.match(line):
            found[match[3]] = (match[1], match[4])
    return found


def needed_in(text: str) -> set[str]:
    """doctor's text: the checks marked `needed` (a column of its own, after the status)."""
    return {match[3] for line in text.splitlines() if (match := LINE.match(line)) and match[2]}


def kernel_takes(lab: Lab) -> dict[str, bool]:
    """Each qdisc of TC_TRIES added (and removed) with tc on a veth pair made here."""
    lab.run("client", "ip", "link", "add", "tp0", "type", "veth", "peer", "name", "tp1")
    try:
        takes = {}
        for name, args in TC_TRIES.items():
            tried = lab.run("client", "tc", "qdisc", "add", "dev", "tp0", *args, check=False)
            takes[name] = tried.returncode == 0
            lab.run("client", "tc", "qdisc", "del", "dev", "tp0", *args[:1], check=False)
        return takes
    finally:
        lab.run("client", "ip", "link", "del", "tp0", check=False)


def in_box(lab: Lab, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    command = lab.in_ns("box", *prefix, LINKSHAPER, "doctor", *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_as_root_beside_an_engine(start_engine: Callable[..., EngineProcess], lab: Lab) -> None:
    engine = start_engine({}, extra=("--http", f"127.0.0.1:{PORT}", "--http-token", TOKEN))
    done = in_box(lab, OUTER, INNER, "--control", engine.control,
                  "--http", f"127.0.0.1:{PORT}", "--token", TOKEN)  # fmt: skip
    assert done.stderr == ""
    found, needed = lines_of(done.stdout), needed_in(done.stdout)
    same = f"engine {__version__}, the same as this linkshaper"
    assert found["engine_version"] == ("ok", same)
    assert found["http_version"] == ("ok", same)
    assert found["control_socket"][0] == found["http_api"][0] == "ok"
    for name in ("af_packet", "packet_vnet_hdr", "cap_net_raw", "cap_net_admin"):
        assert found[name][0] == "ok" and name in needed, found[name]
    for interface in (OUTER, INNER):
        assert found[f"interface.{interface}"][0] == "ok"
        assert found[f"offloads.{interface}"][0] in ("ok", "warn")
    takes = kernel_takes(lab)
    for name, taken in takes.items():
        assert found[name][0] == ("ok" if taken else "missing"), (name, found[name])
        assert name not in needed  # the engine needs none of them
    # everything the engine needs is here, whatever qdiscs this kernel lacks
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1] == "everything `linkshaper run OUTER INNER` needs is here"
    # the tc backend of `ns` needs netem: it decides the exit code there, and only there
    for_tc = in_box(lab, "--for", "ns-tc", "--json")
    assert for_tc.returncode == (0 if takes["qdisc_netem"] and takes["qdisc_htb"] else 1)


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def test_as_nobody_it_says_what_is_missing_and_how_to_get_it(
    start_engine: Callable[..., EngineProcess], lab: Lab
) -> None:
    engine = start_engine({})
    nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
              "--inh-caps=-all")  # fmt: skip
    done = in_box(lab, "--json", "--control", engine.control, OUTER, prefix=nobody)
    assert done.stderr == ""
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["ok"] is False
    for name in ("cap_net_raw", "cap_net_admin", "af_packet"):
        line = check(report, name)
        assert (line["status"], line["required"]) == ("missing", True)
        assert line["fix"] == "sudo linkshaper run OUTER INNER"
        assert name in report["missing"]
    assert check(report, "interface.outer")["status"] == "ok"  # read without privilege
    control = check(report, "control_socket")  # its key is root's, mode 0600
    assert control["status"] == "missing" and "run this as root" in control["detail"]
    assert control["fix"].startswith("sudo linkshaper doctor")
    assert check(report, "qdisc_netem")["status"] == "warn"  # no namespace to try it in
    # root whose bounding set lacks NET_RAW (a container without --cap-add NET_RAW)
    bounded = ("setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw")
    done = in_box(lab, "--json", "--control", engine.control, prefix=bounded)
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["missing"] == ["af_packet", "packet_vnet_hdr",
                                                         "cap_net_raw"]  # fmt: skip
    assert check(report, "cap_net_raw")["fix"].startswith("--cap-add NET_RAW")
    assert check(report, "engine_version")["status"] == "ok"

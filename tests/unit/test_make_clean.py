"""`make clean` on a shared machine: labs are named machine-wide, so it removes one only when
told which (`PREFIX=`); it used to take down the default lab, possibly someone else's."""

from __future__ import annotations

import subprocess

from tests.cli_helpers import ROOT


def clean_commands(*variables: str) -> list[str]:
    """What `make clean` would run (`make -n`: nothing is run)."""
    done = subprocess.run(["make", "-n", "clean", *variables], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, check=True)  # fmt: skip
    return done.stdout.splitlines()


def test_clean_removes_no_lab_unless_named() -> None:
    assert not [line for line in clean_commands() if "lab down" in line]


def test_clean_removes_the_named_lab() -> None:
    downs = [line for line in clean_commands("PREFIX=h21x") if "lab down" in line]
    assert len(downs) == 1 and downs[0].endswith("lab down --prefix 'h21x'"), downs

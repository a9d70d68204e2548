"""What the tests of files written as root share: a real unprivileged user (`nobody`, through
`setpriv`) who plants symbolic links in a directory anyone may write, and a root-owned 0600
file the links point at, which must stay as it was."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NOBODY = 65534
VICTIM_CONTENT = b"root's secret, 0600\n"
#: How long planting the links may take: far above what it needs.
PLANT_PATIENCE = 15.0

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: root is the victim")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory anyone may write, as /tmp is (mode 1777); its parent is /tmp, so `nobody`
    reaches it."""
    path = Path(tempfile.mkdtemp(prefix="linkshaper-shared-"))
    os.chmod(path, 0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file only root may read or write."""
    path = tmp_path / "victim"
    path.write_bytes(VICTIM_CONTENT)
    os.chmod(path, 0o600)
    return path


def plant_links(links: list[Path], target: Path) -> None:
    """`nobody` makes each of `links` point at `target` (one process for them all)."""
    subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         "sh", "-c", 'target=$1; shift; for link; do ln -s "$target" "$link" || exit 1; done',
         "plant", str(target), *map(str, links)],
        check=True, timeout=PLANT_PATIENCE,
    )  # fmt: skip
    assert all(link.is_symlink() and link.lstat().st_uid == NOBODY for link in links)


def plant_link(link: Path, target: Path) -> None:
    plant_links([link], target)


def assert_untouched(victim: Path) -> None:
    status = victim.stat()
    assert victim.read_bytes() == VICTIM_CONTENT
    assert (stat.S_IMODE(status.st_mode), status.st_uid) == (0o600, 0)

"""Shell completion, run in the shells themselves: bash's completion function with the words
bash hands it, then bash and zsh typing `<TAB>` on a terminal, and fish's `complete -C`, each on
the script `linkshaper completion SHELL` (or `tui --completion SHELL`) prints."""

from __future__ import annotations

import functools
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli.completion import _UNITS, flow_fields, link_fields
from engine.model.spec import EXAMPLE_SPEC
from engine.model.spec_patch import patch_spec
from engine.model.units import parse_duration_ms, parse_rate, parse_ratio

BIN = Path(sys.executable).parent
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
#: The venv's programs first, as after an install: what a documented shell line runs.
PATH = f"{BIN}:{os.environ['PATH']}"


def _doc_block(first_line: str) -> list[str]:
    """The lines of the docs/cli.md code block whose first line is `first_line`, without it:
    what the page tells a user to type or put in a shell's startup file."""
    blocks = re.findall(r"^```\w*\n(.*?)^```", (ROOT / "docs" / "cli.md").read_text(), re.M | re.S)
    found: list[list[str]] = [b.splitlines() for b in blocks if b.startswith(first_line + "\n")]
    assert len(found) == 1, f"docs/cli.md has no block (or more than one) opening {first_line!r}"
    return found[0][1:]


@functools.cache
def _text(shell: str, command: str) -> str:
    """What `linkshaper completion SHELL` (`tui --completion SHELL`) prints; once a module."""
    argv = [str(BIN / command), "completion", shell]
    if command == "tui":
        argv = [str(BIN / "tui"), "--completion", shell]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout


def _script(tmp_path: Path, shell: str, command: str = "linkshaper") -> Path:
    path = tmp_path / f"{command}.{shell}"
    path.write_text(_text(shell, command))
    return path


def _bash_reply(script: Path, line: str, function: str = "_linkshaper_complete") -> list[str]:
    """COMPREPLY for `line` with the cursor at its end, the words split as bash splits them
    (at blanks, and around `=`, which is in COMP_WORDBREAKS)."""
    words = re.sub(r"=", " = ", line).split() + ([""] if line.endswith((" ", "=")) else [])
    program = (
        f"source {script}\n"
        f'COMP_LINE="{line}"; COMP_POINT=${{#COMP_LINE}}\n'
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        f"{function}\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return out.stdout.split()


def test_bash_completes_commands_options_and_set_fields(tmp_path: Path) -> None:
    script = _script(tmp_path, "bash")
    assert _bash_reply(script, "linkshaper st") == ["stats"]
    assert {"completion", "set", "get", "run", "lab"} <= set(_bash_reply(script, "linkshaper "))
    assert set(_bash_reply(script, "linkshaper stats --")) >= {"--once", "--json", "--control"}
    assert _bash_reply(script, "linkshaper set egress.la") == ["egress.latency="]
    assert _bash_reply(script, "linkshaper set ingress.lo") == [
        "ingress.loss=", "ingress.loss_correlation=", "ingress.loss_ecn="]  # fmt: skip
    assert _bash_reply(script, "linkshaper set --print egress.queue.dis") == [
        "egress.queue.discipline="]  # fmt: skip
    # after `=` (a word of its own to bash), what follows it: the field's words, or units
    assert _bash_reply(script, "linkshaper set egress.latency=50") == ["50us", "50ms", "50s"]
    assert _bash_reply(script, "linkshaper set ingress.loss=1.5") == ["1.5%"]
    assert _bash_reply(script, "linkshaper set ingress.rate=") == ["blocked", "unlimited"]
    assert _bash_reply(script, "linkshaper set egress.queue.discipline=fq") == ["fq_codel"]
    assert _bash_reply(script, "linkshaper set flows.web.ingress.ra") == ["flows.web.ingress.rate="]
    assert _bash_reply(script, "linkshaper set flows.web.flow.port_m") == [
        "flows.web.flow.port_min=", "flows.web.flow.port_max="]  # fmt: skip


def test_bash_completes_tui_options(tmp_path: Path) -> None:
    script = _script(tmp_path, "bash", "tui")
    assert _bash_reply(script, "tui --de", "_shtab_tui") == ["--demo", "--demo-seconds"]
    assert _bash_reply(script, f"tui --replay {script.parent}/tui.b", "_shtab_tui") == [
        f"{script}"]  # fmt: skip


def _read_until(primary: int, output: bytearray, done: re.Pattern[bytes]) -> None:
    """Read what the shell writes until `done` matches; 30 s at most."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not done.search(output):
        if select.select([primary], [], [], 0.5)[0]:
            try:
                output += os.read(primary, 65536)
            except OSError:  # the shell is gone
                return


def _type_in(argv: list[str], home: Path, setup: list[str], typed: str, path: str = "") -> str:
    """Start an interactive shell on a terminal, run the setup lines, wait for its prompt
    (keys typed before zsh's line editor starts are taken without completion), type `typed`
    (TABs in it), then echo the edited line: what the shell's completion made of it."""
    env = {"PATH": path or os.environ["PATH"], "HOME": str(home), "TERM": "dumb", "PS1": "$ "}
    primary, secondary = os.openpty()
    shell = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary, env=env,
                             start_new_session=True, cwd=home)  # fmt: skip
    os.close(secondary)
    output = bytearray()
    done = re.compile(rb"LINE:42: ([^\r\n]*)\r?\n")
    try:
        os.write(primary, "".join(f"{line}\n" for line in [*setup, "echo READY$((1+1))"]).encode())
        _read_until(primary, output, re.compile(rb"READY2\r?\n.*\$ ", re.S))
        os.write(primary, typed.encode() + b'\x01echo "LINE:$((6*7)): \x05"\n')
        _read_until(primary, output, done)
    finally:
        shell.kill()
        shell.wait(timeout=10)
        os.close(primary)
    found = done.search(output)
    assert found, output.decode(errors="replace")[-2000:]
    return found.group(1).decode()


def test_bash_on_a_terminal_completes_a_field_and_its_unit(tmp_path: Path) -> None:
    script = _script(tmp_path, "bash")
    argv = ["bash", "--norc", "--noprofile", "-i"]
    setup = [f"source {script}"]
    assert _type_in(argv, tmp_path, setup, "linkshaper st\t") == "linkshaper stats "
    typed = _type_in(argv, tmp_path, setup, "linkshaper set egress.la\t50\t\t")
    assert typed.startswith("linkshaper set egress.latency=50"), typed
    assert _type_in(argv, tmp_path, setup, "linkshaper set ingress.loss=2\t") == (
        "linkshaper set ingress.loss=2% ")  # fmt: skip


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (make install)")
def test_zsh_on_a_terminal_completes_commands_and_fields(tmp_path: Path) -> None:
    functions = tmp_path / "zfunc"  # as installed: a file `_linkshaper` in a folder on fpath
    functions.mkdir()
    _script(tmp_path, "zsh").rename(functions / "_linkshaper")
    argv = ["zsh", "-f", "-i"]
    setup = ["bindkey -e", f"fpath=({functions} $fpath)", "autoload -Uz compinit && compinit -u -D"]
    # zsh takes back the space it put after a word when the next key is no character: so the
    # checks type on after the TAB, which shows whether a space (or none, after `=`) was put
    typed = {
        "linkshaper st\t--once": "linkshaper stats --once",
        "linkshaper set egress.la\t5": "linkshaper set egress.latency=5",
        "linkshaper set egress.jitter_distribution=par\tx": (
            "linkshaper set egress.jitter_distribution=pareto x"
        ),
        "linkshaper set flows.web.egress.loss=3\tx": "linkshaper set flows.web.egress.loss=3% x",
    }
    for keys, line in typed.items():
        assert _type_in(argv, tmp_path, setup, keys) == line


def test_bash_completes_from_bashrc_as_documented_without_bash_completion(tmp_path: Path) -> None:
    """The lines docs/cli.md gives for ~/.bashrc, in a bash with nothing else: no
    bash-completion package loaded (this machine has none; `make install` installs none)."""
    bashrc = _doc_block(
        "# example: in ~/.bashrc (bash, with or without the bash-completion package)"
    )
    (tmp_path / ".bashrc").write_text("\n".join(bashrc) + "\n")
    argv = ["bash", "--noprofile", "-i"]
    loaded = subprocess.run([*argv, "-c", "declare -F _init_completion"], capture_output=True,
                            env={"HOME": str(tmp_path), "PATH": PATH}, timeout=30)  # fmt: skip
    assert loaded.returncode != 0, "bash-completion is loaded: this is not the bash without it"
    setup = ["PS1='$ '"]
    assert _type_in(argv, tmp_path, setup, "linkshaper st\t--once", PATH) == (
        "linkshaper stats --once")  # fmt: skip
    assert _type_in(argv, tmp_path, setup, "tui --rep\tx", PATH) == "tui --replay x"


def _many_words(tmp_path: Path) -> dict[str, str]:
    """Keys typed, the line they must make: each a word past the first of a positional that
    takes many (`set`'s fields, `run`'s and `tui`'s OUTER INNER SPEC)."""
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "spec.json").write_text("{}")
    return {
        "linkshaper set ingress.rate=1mbit egress.la\t5": (
            "linkshaper set ingress.rate=1mbit egress.latency=5"
        ),
        "linkshaper set egress.latency=50ms egress.jitter_d\tx": (
            "linkshaper set egress.latency=50ms egress.jitter_distribution=x"
        ),
        "linkshaper run outer x/spec.j\tz": "linkshaper run outer x/spec.json z",
        "tui outer inner x/spec.j\tz": "tui outer inner x/spec.json z",
    }


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (make install)")
def test_zsh_completes_every_word_of_a_many_word_positional(tmp_path: Path) -> None:
    functions = tmp_path / "zfunc"
    functions.mkdir()
    _script(tmp_path, "zsh").rename(functions / "_linkshaper")
    _script(tmp_path, "zsh", "tui").rename(functions / "_tui")
    argv = ["zsh", "-f", "-i"]
    setup = ["bindkey -e", f"fpath=({functions} $fpath)", "autoload -Uz compinit && compinit -u -D"]
    expected = _many_words(tmp_path)
    assert {keys: _type_in(argv, tmp_path, setup, keys) for keys in expected} == expected


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (make install)")
def test_zsh_completes_as_documented_from_a_fresh_zshrc(tmp_path: Path) -> None:
    """docs/cli.md's commands put the scripts on ~/.zfunc, its lines make ~/.zshrc (a fresh
    one has neither fpath nor compinit); a zsh started as a user's then completes."""
    install = "\n".join(_doc_block("# example: zsh, for one user"))
    env = {"PATH": PATH, "HOME": str(tmp_path)}
    subprocess.run(["sh", "-ec", install], env=env, timeout=60, check=True)
    (tmp_path / ".zshrc").write_text("\n".join(_doc_block("# example: in ~/.zshrc")) + "\n")
    argv = ["zsh", "-i"]
    setup = ["bindkey -e", "PS1='$ '"]
    assert _type_in(argv, tmp_path, setup, "linkshaper st\t--once", PATH) == (
        "linkshaper stats --once")  # fmt: skip
    for keys, line in _many_words(tmp_path).items():
        assert _type_in(argv, tmp_path, setup, keys, PATH) == line


def test_tui_prints_its_completion_without_the_ui_or_scapy(tmp_path: Path) -> None:
    """`tui --completion` is run at each shell's start by the ~/.bashrc line: it loads
    neither Textual nor scapy (seconds, and a cache scapy writes under ~/.cache)."""
    env = {"PATH": PATH, "HOME": str(tmp_path), "PYTHONPROFILEIMPORTTIME": "1"}
    out = subprocess.run([str(BIN / "tui"), "--completion", "bash"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert "complete" in out.stdout and "_shtab_tui" in out.stdout
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines()}
    assert not {m for m in imported if m.split(".")[0] in ("textual", "scapy", "rich")}
    assert "shtab" in imported  # (the import times were read)
    assert not (tmp_path / ".cache").exists()


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (make install)")
def test_fish_completes_from_its_completions_folder(tmp_path: Path) -> None:
    folder = tmp_path / "config" / "fish" / "completions"
    folder.mkdir(parents=True)
    for command in ("linkshaper", "tui"):
        _script(tmp_path, "fish", command).rename(folder / f"{command}.fish")
    env = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip

    def complete(line: str) -> list[str]:
        out = subprocess.run(["fish", "-c", f"complete -C '{line}'"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
        return [row.split("\t")[0] for row in out.stdout.splitlines()]

    assert complete("linkshaper st") == ["stats"]
    assert "--interval" in complete("linkshaper stats --")
    assert complete("linkshaper set egress.la") == ["egress.latency="]
    assert complete("linkshaper set egress.latency=20") == [
        "egress.latency=20us", "egress.latency=20ms", "egress.latency=20s"]  # fmt: skip
    assert complete("linkshaper set egress.reorder_packets=") == [
        "egress.reorder_packets=true", "egress.reorder_packets=false"]  # fmt: skip
    assert complete("tui --rep") == ["--replay"]
    # what names a file completes as one (fish completes nothing that is not said)
    (tmp_path / "commute.jsonl").write_text("")
    assert complete("linkshaper replay comm") == ["commute.jsonl"]
    assert complete("tui --replay comm") == ["commute.jsonl"]
    assert complete("linkshaper run --trace-dir conf") == ["config/"]


def test_every_offered_value_is_one_set_takes() -> None:
    """The words and units offered come from the model and units.py: each one, put after a
    field that takes it, makes a spec `set` accepts."""
    parsers = {"rate": parse_rate, "ms": parse_duration_ms, "ratio": parse_ratio}
    for kind, (words, units) in _UNITS.items():
        for text in [*words, *(f"5{unit}" for unit in units)]:
            parsers[kind](text)
    top_level = [(p, v) for p, v in link_fields() if p.count(".") == 1]
    assert len(top_level) > 30 and ("egress.latency", ";us,ms,s") in top_level
    for path, values in top_level:
        words, units = (part.split(",") for part in values.split(";"))
        for text in [w for w in words if w] + [f"5{u}" for u in units if u]:
            value = {"true": True, "false": False, "null": None}.get(text, text)
            patch_spec(EXAMPLE_SPEC, {path: value})
            patch_spec(EXAMPLE_SPEC, {f"flows.http.{path}": value})
    assert ("flow.port_min", ";") in flow_fields()

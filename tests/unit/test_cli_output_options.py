"""The options of the CLI's output (`stats --interval/--seconds`, `fates --json/--plot`):
bad values are refused in one line naming the option, before any engine is asked."""

from __future__ import annotations

import pytest

from engine.cli.main import main


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["stats", "--interval", "0"], "--interval: more than 0 and at most 3600 seconds, not 0"),
        (["stats", "--once", "--interval", "nan"], "--interval: a finite number, not 'nan'"),
        (["stats", "--seconds", "nan"], "--seconds: a finite number, not 'nan'"),
        (["stats", "--seconds", "-1"], "--seconds: not negative, not -1"),
        (["fates", "x.pcapng", "--json", "--plot"], "--plot: not allowed with argument --json"),
    ],
)
def test_bad_output_options_get_one_line_naming_the_option(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([*args, "--control", "/nonexistent/h21j.sock"] if args[0] == "stats" else args)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert words in err and err.splitlines()[-1].count(words) == 1, err

"""`linkshaper completion bash|zsh|fish`: a shell's completion script, printed.

The subcommands and options come from the argument parser (shtab writes the script), the
fields after `set` and their values from the spec's models, so neither is a list kept by
hand: a new subcommand, option or spec field completes as soon as it exists.
"""

from __future__ import annotations

import argparse
import re
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import shtab
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from engine.model.fields import Millis, Rate, Ratio
from engine.model.spec import FlowSpec, LinkPair
from engine.model.units import RATE_WORDS

if TYPE_CHECKING:
    from engine.cli.common import SubParsers

SHELLS = ("bash", "zsh", "fish")

#: What a number of each unit kind may be followed by: the spellings `tc` users type (each
#: one parses, tests/unit/test_completion.py checks), and the words that stand for a value.
_UNITS: dict[str, tuple[list[str], list[str]]] = {
    "rate": (sorted(RATE_WORDS), ["kbit", "mbit", "gbit"]),
    "ms": ([], ["us", "ms", "s"]),
    "ratio": ([], ["%"]),
}


def add_parsers(sub: SubParsers) -> None:
    completion = sub.add_parser(
        "completion",
        help="print a shell's completion script: bash, zsh or fish",
        description="Print the completion script of `linkshaper` for a shell; "
        "`tui --completion SHELL` prints the one of `tui`.",
    )
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    from engine.cli.main import build_parser  # main imports this module: its parser, late

    print(script(build_parser(), args.shell), end="")
    return 0


def _unit_kind(annotation: Any, metadata: list[Any]) -> str | None:
    """Which of the spec's unit types (rate, ms, ratio) a field has, if any: known by the
    parser its `BeforeValidator` runs, also when the type is optional (`Millis | None`)."""
    kinds = {_parser_of(get_args(alias)): kind for alias, kind in _UNIT_ALIASES}
    found = [_parser_of(metadata)]
    if get_origin(annotation) in (Union, types.UnionType):
        found += [_parser_of(get_args(arg)) for arg in get_args(annotation)]
    return next((kinds[func] for func in found if func in kinds), None)


def _parser_of(metadata: Any) -> Any:
    return next((m.func for m in metadata if isinstance(m, BeforeValidator)), None)


_UNIT_ALIASES = ((Rate, "rate"), (Millis, "ms"), (Ratio, "ratio"))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (`queue`, `burst_loss`, optional or not), or None."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _values(info: FieldInfo) -> tuple[list[str], list[str]]:
    """The words a field's value may be, and the units a number in it may take."""
    annotation = info.annotation
    kind = _unit_kind(annotation, info.metadata)
    if kind is not None:
        return _UNITS[kind]
    if annotation is bool:
        return ["true", "false"], []
    choices = [arg for arg in get_args(annotation) if get_origin(arg) is Literal]
    if get_origin(annotation) is Literal:
        choices = [annotation]
    return [str(value) for choice in choices for value in get_args(choice)], []


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Each field path under a model, with `WORDS;UNITS` for its value (comma-separated).
    A model that may be absent (`burst_loss`) is a path too: `=null` turns it off."""
    for name, info in model.model_fields.items():
        nested = _model_of(info.annotation)
        if nested is None:
            words, units = _values(info)
            yield prefix + name, ",".join(words) + ";" + ",".join(units)
            continue
        if type(None) in get_args(info.annotation):
            yield prefix + name, "null;"
        yield from _fields(nested, f"{prefix}{name}.")


def link_fields() -> list[tuple[str, str]]:
    """What `set` takes for the default link: `ingress.latency`, `egress.queue.packets`..."""
    return list(_fields(LinkPair))


def flow_fields() -> list[tuple[str, str]]:
    """What `set` takes after `flows.LABEL.`: the flow's match and its links, which
    `set` (spec_patch) names without their `link.`, as it does the default link's."""
    return [(path.removeprefix("link."), values) for path, values in _fields(FlowSpec)]


def _set_argument(parser: argparse.ArgumentParser) -> argparse.Action:
    """The `FIELD=VALUE` argument of `set`, found in the parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            command: argparse.ArgumentParser = action.choices["set"]
            for argument in command._actions:
                if argument.dest == "assignments":
                    return argument
    raise LookupError("the parser has no `set` command with FIELD=VALUE")


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every argument of a parser and of its subcommands'."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                yield from _actions(command)


def mark_paths(parser: argparse.ArgumentParser) -> None:
    """Arguments that name files complete as files, folders as folders: known by their
    metavar (FILE, PATH, DIR) or by a name ending `_dir`. (fish completes nothing else.)"""
    for action in _actions(parser):
        metavar = action.metavar if isinstance(action.metavar, str) else ""
        if metavar == "DIR" or action.dest.endswith("_dir"):
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
        elif metavar.startswith(("FILE", "PATH", "OUTER INNER [SPEC")) or action.dest == "config":
            action.complete = shtab.FILE  # type: ignore[attr-defined]


#: shtab writes a nargs='+' or '*' positional as zsh's `"(*):..."` (`"(*)::..."`): one positional
#: that shuts out the rest-arguments spec `*`, so zsh completes its first word and no other.
#: Written `"*:..."` it is the rest-arguments spec itself, and every word completes; a parser
#: with subcommands looks for such a spec (`one_or_more`) to know its words are taken.
_ZSH_ONE_POSITIONAL = re.compile(r'^(\s*)"\(\*\)::?', re.MULTILINE)


def shell_script(parser: argparse.ArgumentParser, shell: str, preamble: str = "") -> str:
    """shtab's script for a parser, with zsh's many-word positionals completing every word."""
    text: str = shtab.complete(parser, shell, preamble=preamble)
    if shell == "zsh":
        text = _ZSH_ONE_POSITIONAL.sub(r'\1"*:', text)
        text = text.replace("one_or_more='(*)'", "one_or_more='*:'")
    return text


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of `linkshaper` for a shell, `set`'s fields included."""
    from engine.cli import completion_scripts as scripts

    data = {"link": link_fields(), "flow": flow_fields()}
    mark_paths(parser)
    _set_argument(parser).complete = {shell: scripts.SET_WORDS[shell]}  # type: ignore[attr-defined]
    text = shell_script(parser, shell, scripts.preamble(shell, data))
    return text + scripts.EPILOGUE.get(shell, "")

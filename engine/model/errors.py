"""The one base of every error the engine reports to a person: a command line catches it and
prints its one line; anything else that escapes is a bug, and shows as one."""

from __future__ import annotations


class LinkshaperError(Exception):
    """An error with a one-line message meant for the user (a bad spec, no engine, ...)."""

"""Whether a running engine answers, on its control socket and over HTTP, and whether it is the
same linkshaper as this one (`get_version`, `GET /version`)."""

from __future__ import annotations

import os

from engine.doctor.report import Check
from engine.model.printable import printable
from engine.model.version import __version__
from engine.protocol.client import ControlClient
from engine.protocol.control import ControlError, key_owner, key_path
from engine.protocol.http_client import HttpApiError, HttpClient

#: An HTTP API that does not answer within this long is reported as not answering.
HTTP_TIMEOUT = 5.0
RESTART = "restart the engine with this installation's linkshaper"


def version_check(name: str, version: str | None, why_not: str = "") -> Check:
    """The engine's version against this package's: a mismatch is a warning (the protocol
    may differ), an engine that cannot say is one too (it is older than the question). What
    the engine said is cut and its control characters replaced: it reaches a terminal."""
    if version is not None:
        version = printable(version)
    why_not = printable(why_not)
    if version is None:
        return Check(name, "warn", f"the engine does not say its version ({why_not}): it is "
                     f"older than this linkshaper {__version__}", RESTART)  # fmt: skip
    if version == __version__:
        return Check(name, "ok", f"engine {version}, the same as this linkshaper", found=version)
    return Check(name, "warn", f"engine {version}, but this linkshaper is {__version__}: "
                 "commands and the TUI may not understand each other", RESTART,
                 found=version)  # fmt: skip


def _key_unreadable(control: str) -> bool:
    """Whether the key is there but this process may not read it (nor, perhaps, its folder)."""
    try:
        os.stat(key_path(control))
    except PermissionError:
        return True
    except OSError:
        return False
    return not os.access(key_path(control), os.R_OK)


def control_checks(path: str, given: bool, rerun: str = "linkshaper doctor") -> list[Check]:
    """`control_socket` and, when an engine answered, `engine_version`; `rerun` is the
    command line doctor was given, which the fix for an unreadable key repeats."""
    start = f"linkshaper run OUTER INNER{f' --control {path}' if given else ''}"
    try:
        client = ControlClient(path)
    except ControlError as exc:
        fix = start
        if _key_unreadable(path):
            owner = key_owner(path)
            why = (
                "its folder is closed to this user"
                if owner == "its owner"
                else f"the socket's key is {owner}'s, mode 0600"
            )
            fix = f"sudo {rerun} ({why})"
        return [
            Check("control_socket", "missing", str(exc), fix),
            Check("engine_version", "missing", "no engine to ask (see control_socket)", fix),
        ]
    with client:
        try:
            version: str | None = client.version()
            why_not = ""
        except ControlError as exc:
            version, why_not = None, str(exc)
    return [
        Check("control_socket", "ok", f"an engine answers on {path}"),
        version_check("engine_version", version, why_not),
    ]


def http_checks(url: str, token: str | None) -> list[Check]:
    """`http_api` (GET /version answered, with the token if one is given) and `http_version`."""
    if "://" not in url:
        url = f"http://{url}"
    try:
        api = HttpClient(url, token, timeout=HTTP_TIMEOUT)
    except HttpApiError as exc:
        fix = "--http http://HOST:PORT"
        return [
            Check("http_api", "missing", exc.message, fix),
            Check("http_version", "missing", "no API to ask (see http_api)", fix),
        ]
    try:
        version = api.version()
    except HttpApiError as exc:
        if exc.status in (404, 502):  # an API or an engine older than GET /version
            return [
                Check("http_api", "ok", f"the API answers at {api.url}"),
                version_check("http_version", None, f"GET /version: {exc}"),
            ]
        if exc.status == 401:
            fix = "--token TOKEN (the engine's --http-token; default $LINKSHAPER_HTTP_TOKEN)"
            detail = f"{api.url} wants a token: {exc.message}"
        else:
            where = api.url.split("://", 1)[1].rstrip("/")
            fix = (f"start an API at {where}: linkshaper http --listen {where} (or linkshaper "
                   f"run OUTER INNER --http {where}); or check the address")  # fmt: skip
            detail = f"no answer from {api.url}: {exc}"
        return [
            Check("http_api", "missing", detail, fix),
            Check("http_version", "missing", "no API to ask (see http_api)", fix),
        ]
    return [
        Check("http_api", "ok", f"the API answers at {api.url}"),
        version_check("http_version", version),
    ]

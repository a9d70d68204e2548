"""A typed client of an engine's HTTP API (`linkshaper run --http`, the image's port 80, a
sidecar's port): what the pytest fixture, the testcontainers module and users' scripts share,
so that no caller builds JSON by hand. Answers are the engine's own pydantic models.

    from engine.protocol.http_client import HttpClient
    api = HttpClient("http://localhost:3000")
    api.set(latency="80ms")                      # both directions
    api.set("egress", loss=0.02, rate="5mbit")   # one
    print(api.stats().egress.total.packets_out)

Standard library only (http.client): it runs wherever the engine's models import. A request
has a deadline as a whole (`timeout`), an answer's body is read up to MAX_BODY, redirects are
refused (the token would go to wherever they point), and only http:// and https:// URLs are
taken: whatever else an address answers is one line (HttpApiError), never a traceback.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.parse
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from engine.model.errors import LinkshaperError
from engine.model.printable import printable
from engine.model.spec import Direction, Spec, loads_spec, seed_view
from engine.model.stats import EngineStats

Directions = Direction | Literal["both"]
M = TypeVar("M", bound=BaseModel)

#: Largest answer body read: a stats answer for 10,000 flows each way is some 7 MB.
MAX_BODY = 64 * 1024 * 1024


class HttpApiError(LinkshaperError, RuntimeError):
    """The API refused a request (`status`, and its one-line reason) or could not be reached
    (`status` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


class HttpClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        """`url`: the API's base, e.g. http://localhost:3000; `token`: the engine's
        --http-token, if it has one (needed for every change); `timeout`: seconds for a
        whole request, answer included."""
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpApiError(0, f"{url!r}: not an http:// or https:// URL")
        self._parts = parts

    def _connection(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._parts.scheme == "https" else None
        port = self._parts.port
        host = self._parts.hostname or ""
        if kind is not None:
            return kind(host, port, timeout=self.timeout)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
    ) -> bytes:
        target = self._parts.path.rstrip("/") + path
        if query:
            target += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = self._connection()
        fired = threading.Event()
        timer = threading.Timer(self.timeout, _cut, (conn, fired))
        timer.daemon = True
        timer.start()
        try:
            conn.request(method, target, data, headers)
            response = conn.getresponse()
            content = response.read(MAX_BODY + 1)
            status = response.status
            if len(content) <= MAX_BODY and response.length:  # the peer closed before the end
                raise http.client.IncompleteRead(content, response.length)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if fired.is_set():
                raise HttpApiError(0, f"{self.url}: no answer within {self.timeout:g} s") from None
            raise HttpApiError(0, f"{self.url}: {printable(repr(exc))}") from None
        finally:
            timer.cancel()
            conn.close()
        if fired.is_set():
            raise HttpApiError(0, f"{self.url}: no answer within {self.timeout:g} s")
        if len(content) > MAX_BODY:
            raise HttpApiError(0, f"{self.url}{path}: an answer larger than "
                               f"{MAX_BODY >> 20} MiB")  # fmt: skip
        if 300 <= status < 400:
            where = printable(response.getheader("Location") or "nowhere")
            raise HttpApiError(0, f"{self.url}{path}: redirected to {where}, not followed")
        if status >= 400:
            raise HttpApiError(status, _error_of(content))
        return content

    def _json(self, path: str) -> Any:
        """The answer to GET `path` as JSON, or HttpApiError."""
        try:
            return json.loads(self._request("GET", path))
        except ValueError:
            raise HttpApiError(0, f"{self.url}{path}: the answer is not JSON") from None

    def _model(self, model: type[M], content: bytes, path: str) -> M:
        """`content` as `model`, or one HttpApiError line."""
        try:
            return model.model_validate_json(content)
        except ValueError:
            raise HttpApiError(0, f"{self.url}{path}: the answer is not linkshaper's") from None

    # Reading

    def spec(self) -> Spec:
        """The spec in force."""
        return loads_spec(self._request("GET", "/qos"))

    def stats(self) -> EngineStats:
        """Both directions' counters, as the engine last reported them."""
        return self._model(EngineStats, self._request("GET", "/stats"), "/stats")

    def info(self) -> dict[str, Any]:
        """Interfaces, processes and paths (GET /info)."""
        info = self._json("/info")
        if not isinstance(info, dict):
            raise HttpApiError(0, f"{self.url}/info: not an object")
        return info

    def version(self) -> str:
        """The engine's package version (GET /version)."""
        answer = self._json("/version")
        version = answer.get("version") if isinstance(answer, dict) else None
        if not isinstance(version, str):
            raise HttpApiError(0, f"{self.url}/version: no version in the answer")
        return version

    def metrics(self) -> str:
        """The Prometheus text of GET /metrics."""
        return self._request("GET", "/metrics").decode(errors="replace")

    def ready(self) -> bool:
        """Whether the API answers."""
        try:
            self._request("GET", "/qos")
        except HttpApiError as exc:
            return exc.status != 0
        return True

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the API answers, or HttpApiError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise HttpApiError(0, f"{self.url}: no answer within {timeout:g} s")
            time.sleep(0.2)

    # Changing

    def replace(self, spec: Spec | dict[str, Any]) -> Spec:
        """Replace the whole spec (POST /qos); a dict is checked here first, as the engine
        would, so a mistake is a SpecError naming the field before anything is sent."""
        if isinstance(spec, dict):
            spec = loads_spec(json.dumps(spec))
        return loads_spec(self._request("POST", "/qos", seed_view(spec)))

    def patch(self, changes: dict[str, Any]) -> Spec:
        """Set single fields by dotted path (PATCH /qos): {"egress.latency": "50ms"}."""
        return loads_spec(self._request("PATCH", "/qos", changes))

    def set(self, direction: Directions = "both", /, link: str | None = None,
            **fields: Any) -> Spec:  # fmt: skip
        """Set fields of the default link (or of flow link `link`) in one direction or both:
        `set(latency="80ms")`, `set("ingress", rate="2mbit", loss=0.01)`."""
        directions = ("ingress", "egress") if direction == "both" else (direction,)
        prefix = f"flows.{link}." if link is not None else ""
        return self.patch(
            {f"{prefix}{way}.{name}": value for way in directions for name, value in fields.items()}
        )

    def reset(self) -> Spec:
        """Pass-through both ways, no flows."""
        return self.replace({})

    def flush(self, direction: Direction | None = None, link: str | None = None) -> str:
        """Drop what the links hold (all, one direction's, or one link's)."""
        query = {k: v for k, v in (("direction", direction), ("link", link)) if v is not None}
        try:
            answer = json.loads(self._request("POST", "/flush", query=query))
        except ValueError:
            raise HttpApiError(0, f"{self.url}/flush: the answer is not JSON") from None
        done = answer.get("done") if isinstance(answer, dict) else None
        return done if isinstance(done, str) else ""


def _cut(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    """The whole-request deadline: shut the socket down so the blocked read returns."""
    fired.set()
    if conn.sock is not None:
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_RDWR)


def _error_of(body: bytes) -> str:
    """The one line of an error answer ({"error": "..."}), else its text."""
    try:
        answer = json.loads(body)
    except ValueError:
        return printable(body.decode(errors="replace").strip())
    error = answer.get("error") if isinstance(answer, dict) else None
    return printable(error if isinstance(error, str) else str(answer))

"""A typed client of an engine's HTTP API (`linkshaper run --http`, the image's port 80, a
sidecar's port): what the pytest fixture, the testcontainers module and users' scripts share,
so that no caller builds JSON by hand. Answers are the engine's own pydantic models.

    from engine.protocol.http_client import HttpClient
    api = HttpClient("http://localhost:3000")
    api.set(latency="80ms")                      # both directions
    api.set("egress", loss=0.02, rate="5mbit")   # one
    print(api.stats().egress.total.packets_out)

Standard library only (urllib): it runs wherever the engine's models import.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Literal

from engine.model.errors import LinkshaperError
from engine.model.spec import Direction, Spec, loads_spec, seed_view
from engine.model.stats import EngineStats

Directions = Direction | Literal["both"]


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
        --http-token, if it has one (needed for every change)."""
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
    ) -> bytes:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                content: bytes = response.read()
                return content
        except urllib.error.HTTPError as exc:
            raise HttpApiError(exc.code, _error_of(exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HttpApiError(0, f"{self.url}: {reason}") from None

    # Reading

    def spec(self) -> Spec:
        """The spec in force."""
        return loads_spec(self._request("GET", "/qos"))

    def stats(self) -> EngineStats:
        """Both directions' counters, as the engine last reported them."""
        return EngineStats.model_validate_json(self._request("GET", "/stats"))

    def info(self) -> dict[str, Any]:
        """Interfaces, processes and paths (GET /info)."""
        info: dict[str, Any] = json.loads(self._request("GET", "/info"))
        return info

    def version(self) -> str:
        """The engine's package version (GET /version)."""
        answer: dict[str, Any] = json.loads(self._request("GET", "/version"))
        version = answer.get("version") if isinstance(answer, dict) else None
        if not isinstance(version, str):
            raise HttpApiError(0, f"{self.url}/version: no version in the answer")
        return version

    def metrics(self) -> str:
        """The Prometheus text of GET /metrics."""
        return self._request("GET", "/metrics").decode()

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
        answer: dict[str, str] = json.loads(self._request("POST", "/flush", query=query))
        return answer.get("done", "")


def _error_of(body: bytes) -> str:
    """The one line of an error answer ({"error": "..."}), else its text."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:200]
    error = answer.get("error") if isinstance(answer, dict) else None
    return error if isinstance(error, str) else str(answer)[:200]

"""A testcontainers-python module: a linkshaper sidecar next to a container a test started
(`pip install linkshaper[testcontainers]`).

    from testcontainers.core.container import DockerContainer
    from engine.testing.linkshaper_container import LinkshaperContainer

    with DockerContainer("nginx:alpine") as app, LinkshaperContainer(app) as shaper:
        shaper.api.set(latency="50ms")           # an HttpClient
        ...                                      # talk to the app: every packet is shaped

The sidecar joins the target's network namespace (`--network container:TARGET`, NET_ADMIN and
NET_RAW only) and shapes its interface (see engine/deploy/sidecar.py); its API is reached
on the target's address, on a port that is never shaped. Stopping it gives the target its
interface back, unshaped.
"""

from __future__ import annotations

import json
from typing import Any

from testcontainers.core.container import DockerContainer

from engine.model.spec import Spec, seed_view
from engine.protocol.http_client import HttpClient

DEFAULT_IMAGE = "linkshaper:latest"


class LinkshaperContainer(DockerContainer):
    def __init__(
        self,
        target: DockerContainer | str,
        image: str = DEFAULT_IMAGE,
        spec: Spec | dict[str, Any] | None = None,
        http_port: int = 80,
        token: str | None = None,
        **kwargs: Any,
    ) -> None:
        """`target`: a started DockerContainer or a container's id or name; `spec`: the first
        spec (default: pass-through); `http_port`: the API's port inside the target's
        namespace (pick another if the application serves on 80)."""
        super().__init__(image, **kwargs)
        self._target = target
        self.http_port = http_port
        self.token = token
        self.with_command("sidecar")
        self.with_env("LINKSHAPER_HTTP_PORT", str(http_port))
        if token:
            self.with_env("LINKSHAPER_HTTP_TOKEN", token)
        if spec is not None:
            data = seed_view(spec) if isinstance(spec, Spec) else spec
            self.with_env("LINKSHAPER_SPEC_JSON", json.dumps(data))
        self._api: HttpClient | None = None

    def _target_id(self) -> str:
        if isinstance(self._target, str):
            return self._target
        target_id: str = self._target.get_wrapped_container().id
        return target_id

    def start(self) -> LinkshaperContainer:
        """Start beside the target and wait until the API answers (the link is then shaped)."""
        joined = {
            "cap_add": ["NET_ADMIN", "NET_RAW"],
            "network_mode": f"container:{self._target_id()}",
        }
        self.with_kwargs(**{**self._kwargs, **joined})  # with_kwargs replaces what was given
        super().start()
        self.api.wait_ready(30.0)
        return self

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        """Stop it gracefully first (SIGTERM: it gives the target its interface back), then
        remove it as testcontainers does."""
        container = self.get_wrapped_container()
        if container is not None:
            container.stop(timeout=10)
        super().stop(force, delete_volume)

    @property
    def api(self) -> HttpClient:
        """The sidecar's HTTP API, on the target's first address."""
        if self._api is None:
            docker = self.get_docker_client().client
            attrs = docker.containers.get(self._target_id()).attrs
            networks = attrs["NetworkSettings"]["Networks"]
            address = next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
            self._api = HttpClient(f"http://{address}:{self.http_port}", token=self.token)
        return self._api

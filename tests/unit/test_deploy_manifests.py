"""The Kubernetes manifests, validated against a pinned Kubernetes version's schemas (strict:
no field the API would drop), and what the README promises of them: the sidecar has
NET_ADMIN and NET_RAW and is not privileged, its probes and the Service reach the API's port,
Prometheus is told where /metrics is. Not run on a cluster (README "Kubernetes")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tests import ROOT

KUBERNETES = "1.33.0"
MANIFEST = ROOT / "deploy" / "kubernetes" / "linkshaper-sidecar.yaml"


def resources(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_the_manifests_are_valid_kubernetes() -> None:
    found = resources(MANIFEST)
    assert {doc["kind"] for doc in found} == {"ConfigMap", "Deployment", "Service"}
    for doc in found:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_sidecar_has_only_the_capabilities_it_needs_and_its_api_is_wired() -> None:
    by_kind = {doc["kind"]: doc for doc in resources(MANIFEST)}
    pod = by_kind["Deployment"]["spec"]["template"]
    sidecar = next(c for c in pod["spec"]["containers"] if c["name"] == "linkshaper")
    assert sidecar["args"] == ["sidecar"]
    security = sidecar["securityContext"]
    assert security["privileged"] is False and security["capabilities"]["drop"] == ["ALL"]
    assert sorted(security["capabilities"]["add"]) == ["NET_ADMIN", "NET_RAW"]
    env = {e["name"]: e for e in sidecar["env"]}
    port = int(env["LINKSHAPER_HTTP_PORT"]["value"])
    assert sidecar["ports"] == [{"name": "linkshaper-api", "containerPort": port}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert sidecar[probe]["httpGet"]["port"] == "linkshaper-api"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    reference = env["LINKSHAPER_SPEC_JSON"]["valueFrom"]["configMapKeyRef"]
    config = by_kind["ConfigMap"]
    assert reference["name"] == config["metadata"]["name"] and reference["key"] in config["data"]
    service = by_kind["Service"]["spec"]
    assert service["selector"] == pod["metadata"]["labels"]
    assert service["ports"][0]["targetPort"] == "linkshaper-api"

"""The spec's endpoints: the seed's `/qos` and `POST /`, patches by dotted path, flush, and
the browser page (also at the seed's `/control.html`)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, JSONResponse

from engine.daemon.gate import MAX_PATCH_FIELDS as MAX_PATCH_FIELDS
from engine.daemon.gate import check_patch_size
from engine.model.spec import (
    MAX_LABEL_LENGTH,
    Direction,
    LinkSpec,
    Spec,
    SpecError,
    seed_view,
)
from engine.protocol.messages import Done, Error, Flush, PatchSpec, SetSpec, SpecReply
from engine.web.common import NOT_THERE, Engine, spec_in_force

#: What the spec endpoints answer: the seed's shape (`seed_view`), so that the seed's own
#: client, which refuses fields it does not know, reads it; the schema is the whole model.
SPEC_OK: dict[int | str, dict[str, Any]] = {
    200: {"model": Spec, "description": "The spec in force; extension fields only where set"}
}


def spec_routes(
    engine: Engine,
    changes: list[Depends],
    errors: dict[int | str, dict[str, Any]],
) -> APIRouter:
    """The routes; those that change the link depend on `changes` (the token check)."""
    router = APIRouter()

    html = page_html()

    @router.get("/", response_class=HTMLResponse, summary="The browser page")
    @router.get("/control.html", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return html

    @router.get("/qos", response_model=None, responses=SPEC_OK, summary="The spec in force")
    def get_qos() -> JSONResponse:
        return JSONResponse(seed_view(spec_in_force(engine)))

    @router.post("/qos", response_model=None, dependencies=changes,
                 responses={**SPEC_OK, **errors},
                 summary="Replace the whole spec (either seed format)")  # fmt: skip
    @router.post("/", response_model=None, dependencies=changes,
                 responses={**SPEC_OK, **errors},
                 summary="Replace the whole spec (the seed frontend's REST call)")  # fmt: skip
    def post_spec(spec: Spec) -> JSONResponse:
        return JSONResponse(seed_view(_apply(engine, SetSpec(spec=spec, source="http"))))

    @router.patch("/qos", response_model=None, dependencies=changes,
                  responses={**SPEC_OK, **errors},
                  summary="Set single fields by dotted path, with units")  # fmt: skip
    def patch_qos(
        fields: Annotated[
            dict[str, Any],
            Body(examples=[{"egress.latency": "50ms", "ingress.rate": "10mbit"}]),
        ],
    ) -> JSONResponse:
        try:  # the gate's own check, early: such a body is not even sent on
            check_patch_size(fields)
        except SpecError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        patched = _apply(engine, PatchSpec(changes=fields, source="http"))
        return JSONResponse(seed_view(patched))

    @router.post("/flush", dependencies=changes, responses={**errors, **NOT_THERE},
                 summary="Drop the packets links hold, queued and delayed")  # fmt: skip
    def flush(
        direction: Annotated[Direction | None, Query()] = None,
        link: Annotated[str | None, Query(max_length=MAX_LABEL_LENGTH)] = None,
    ) -> dict[str, str]:
        reply = engine.handle(Flush(direction=direction, label=link))
        if isinstance(reply, Error):
            raise HTTPException(status_code=404, detail=reply.message)
        assert isinstance(reply, Done)
        return {"done": reply.message}

    return router


#: Where the page's script takes the LINK's JSON schema, put in when the page is served.
SCHEMA_SLOT = "/*LINK_SCHEMA*/null"


def page_html() -> str:
    """The browser page with the LINK's JSON schema in it, from which it builds an editor for
    every field: a field added to the model shows up on the page without an edit to it."""
    schema = json.dumps(LinkSpec.model_json_schema(mode="validation"))
    page = resources.files("engine.web").joinpath("index.html").read_text()
    # `<` escaped: a description holding `</script>` must not end the script.
    return page.replace(SCHEMA_SLOT, schema.replace("<", "\\u003c"), 1)


def _apply(engine: Engine, request: SetSpec | PatchSpec) -> Spec:
    """Apply a change: the supervisor's gate decides (engine/daemon/gate.py), with the
    trace-file policy of the network (`engine` is the NetworkDoor, which stamps it)."""
    reply = engine.handle(request)
    if isinstance(reply, Error):  # made but not in force by its deadline: 503
        raise HTTPException(status_code=503 if reply.not_in_force else 422, detail=reply.message)
    assert isinstance(reply, SpecReply)
    return reply.spec

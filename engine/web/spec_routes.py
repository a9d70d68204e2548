"""The spec's endpoints: the seed's `/qos` and `POST /`, patches by dotted path, flush, and
the browser page (also at the seed's `/control.html`)."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, JSONResponse

from engine.model.spec import Direction, Spec, SpecError, patch_spec, seed_view
from engine.model.trace import TraceError, allowed_traces
from engine.protocol.messages import Done, Error, Flush, PatchSpec, SetSpec, SpecReply
from engine.web.common import NOT_THERE, Engine, spec_in_force

#: Most fields one PATCH may set.
MAX_PATCH_FIELDS = 1000
#: What the spec endpoints answer: the seed's shape (`seed_view`), so that the seed's own
#: client, which refuses fields it does not know, reads it; the schema is the whole model.
SPEC_OK: dict[int | str, dict[str, Any]] = {
    200: {"model": Spec, "description": "The spec in force; extension fields only where set"}
}


def spec_routes(
    engine: Engine,
    trace_dir: str | None,
    changes: list[Depends],
    errors: dict[int | str, dict[str, Any]],
) -> APIRouter:
    """The routes; those that change the link depend on `changes` (the token check)."""
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, summary="The browser page")
    @router.get("/control.html", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("engine.web").joinpath("index.html").read_text()

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
        return JSONResponse(seed_view(_apply(engine, SetSpec(spec=spec, source="http"), trace_dir)))

    @router.patch("/qos", response_model=None, dependencies=changes,
                  responses={**SPEC_OK, **errors},
                  summary="Set single fields by dotted path, with units")  # fmt: skip
    def patch_qos(
        fields: Annotated[
            dict[str, Any],
            Body(examples=[{"egress.latency": "50ms", "ingress.rate": "10mbit"}]),
        ],
    ) -> JSONResponse:
        if len(fields) > MAX_PATCH_FIELDS:
            raise HTTPException(
                status_code=422, detail=f"body: more than {MAX_PATCH_FIELDS} fields in one patch"
            )
        patched = _apply(engine, PatchSpec(changes=fields, source="http"), trace_dir)
        return JSONResponse(seed_view(patched))

    @router.post("/flush", dependencies=changes, responses={**errors, **NOT_THERE},
                 summary="Drop the packets links hold, queued and delayed")  # fmt: skip
    def flush(
        direction: Annotated[Direction | None, Query()] = None,
        link: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, str]:
        reply = engine.handle(Flush(direction=direction, label=link))
        if isinstance(reply, Error):
            raise HTTPException(status_code=404, detail=reply.message)
        assert isinstance(reply, Done)
        return {"done": reply.message}

    return router


def _apply(engine: Engine, request: SetSpec | PatchSpec, trace_dir: str | None) -> Spec:
    """Apply a change from HTTP: traces only from `trace_dir` (see `trace.allowed_traces`)."""
    try:
        current = spec_in_force(engine)
        if isinstance(request, SetSpec):
            request = request.model_copy(
                update={"spec": allowed_traces(request.spec, current, trace_dir)}
            )
        elif _may_name_trace(request.changes):  # else the supervisor's check is the only one
            patched = patch_spec(current, request.changes)
            checked = allowed_traces(patched, current, trace_dir)
            if checked is not patched:  # a trace's path made whole: apply the result
                request = SetSpec(spec=checked, source=request.source)
    except (SpecError, TraceError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    reply = engine.handle(request)
    if isinstance(reply, Error):  # made but not in force by its deadline: 503
        raise HTTPException(status_code=503 if reply.not_in_force else 422, detail=reply.message)
    assert isinstance(reply, SpecReply)
    return reply.spec


def _may_name_trace(changes: dict[str, Any]) -> bool:
    """Whether a patch can set a trace: a path that ends in one, or an object or a list."""
    return any(
        path.rsplit(".", 1)[-1] == "trace" or isinstance(value, dict | list)
        for path, value in changes.items()
    )

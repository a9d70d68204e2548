"""The browser page is served with the LINK's JSON schema in it, from which it builds its
editors (tests/lab/test_web_page_fields.py drives them in Chromium)."""

from __future__ import annotations

import json

from engine.model.spec import LinkSpec
from engine.web.spec_routes import SCHEMA_SLOT, page_html


def test_the_page_carries_the_link_schema_whole() -> None:
    page = page_html()
    assert SCHEMA_SLOT not in page
    start = page.index("const LINK_SCHEMA = ") + len("const LINK_SCHEMA = ")
    schema, _ = json.JSONDecoder().raw_decode(page[start:])
    assert schema == LinkSpec.model_json_schema(mode="validation")
    # No `</script>` (or any `<`) inside: a description cannot end the page's script early.
    assert "<" not in page[start : page.index(";\n", start)]

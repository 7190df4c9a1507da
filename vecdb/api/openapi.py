"""Write the OpenAPI document of the REST API: ``python -m vecdb.api.openapi > openapi.json``.

The committed ``openapi.json`` is compared with this output by the tests, so any
change to the API surface is a deliberate, reviewed change of that file.
"""

from __future__ import annotations

import json
import sys
from typing import Any, cast

from vecdb.api.app import create_app
from vecdb.service import VectorService


def openapi_document() -> dict[str, Any]:
    app = create_app(service=cast(VectorService, object()))  # never called: only the routes matter
    return app.openapi()


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

"""Generate the JSON Schema of wire contract v1 from the pydantic models.

`python -m meshmon.model.schema > docs/protocol.schema.json`; a test keeps the file current.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from meshmon.model.wire import BridgeStatus, Command, Info, Report, Status


def contract_schema() -> dict[str, Any]:
    """One JSON Schema document with a definition per message kind."""
    _, schema = models_json_schema(
        [(m, "validation") for m in (Status, Info, Report, Command, BridgeStatus)],
        title="meshmon wire contract v1",
        description="Payloads on meshmon/v1/node/NODE/{status,info,report,cmd} and "
        "meshmon/v1/bridge/BRIDGE/status",
    )
    return schema


def main() -> None:
    print(json.dumps(contract_schema(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()

"""Write a remote driver in Python: an ASGI app that speaks the Driver API v0.9.3 and checks the JWT.

    from strongroom.drivers.sdk import DriverApp, DriverResponse, PutRequest, ResourceRequest

    async def put(request: PutRequest) -> DriverResponse:
        ...create or update request.guresid...
        return DriverResponse(values={"host": ...}, secrets={"password": ...}, cookie=b"...")

    app = DriverApp(put=put, get=get, delete=delete, public_keys=[open("operator.pub", "rb").read()],
                    audience="https://drivers.example.com/pg/")   # the Driver's spec.target

Serve `app` with any ASGI server (`uvicorn module:app`). See docs/drivers.md and
examples/drivers/postgres/.
"""

from strongroom.drivers.sdk.app import (
    DRIVER_FAILURE,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    DriverApp,
    DriverFailure,
    DriverResponse,
    InProgress,
    PutRequest,
    ResourceRequest,
    in_progress,
)

__all__ = [
    "DRIVER_FAILURE",
    "INTERNAL_ERROR",
    "INVALID_REQUEST",
    "DriverApp",
    "DriverFailure",
    "DriverResponse",
    "InProgress",
    "PutRequest",
    "ResourceRequest",
    "in_progress",
]

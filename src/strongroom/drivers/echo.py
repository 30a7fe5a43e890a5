"""The Echo driver (`humanitec/echo`, `strongroom/echo`): represents a resource that exists elsewhere.

It provisions nothing: driver values come back as output values and driver secrets (secret references
already resolved by the operator) as output secrets, under the same keys. No manifests, no cookie; delete
has nothing to undo. Typical use: a database run by another team, with host/port as values and
username/password as secret references.
"""

from __future__ import annotations

from strongroom.drivers.base import DriverRejected, DriverRequest, DriverResult, split_update


class EchoDriver:
    """Outputs = inputs. Stateless."""

    in_process = True

    async def apply(self, req: DriverRequest) -> DriverResult:
        return self._echo(req)

    async def close(self) -> None:
        return None

    async def delete(self, req: DriverRequest) -> None:
        return None

    @staticmethod
    def _echo(req: DriverRequest) -> DriverResult:
        try:
            # A workload-type resource's `update` output is JSON patch for the workload, as for any driver.
            values, update = split_update(req.type, req.values)
        except ValueError as exc:
            raise DriverRejected(f"echo driver: {req.redact(str(exc))}") from None
        return DriverResult(
            id=req.guresid,
            type=req.type,
            values=values,
            secrets=dict(req.secrets),
            update=update,
        )

"""What a reconcile that failed with an exception tells the user: a condition reason and actionable message.

Every failure ends as a condition on the object (and a Warning Event), never only as a log line. The
message is built from the API server's structured answer (code, reason, the kind and name it names, the
fields it rejected) and never from the text of what was sent: the API server's own message for a rejected
object can quote the values it was given, and those may be secret.
"""

from __future__ import annotations

import asyncio

import httpx2
from lightkube.core.exceptions import ApiError

from strongroom.reconcile.stores import Problem

# Longest message written into a condition.
MESSAGE_LIMIT = 1024


def describe_failure(exc: BaseException, operator_namespace: str) -> Problem:
    """The condition for a reconcile that raised `exc` (all are worth retrying: the cause can be fixed)."""
    if isinstance(exc, ApiError):
        return _api_failure(exc, operator_namespace)
    if isinstance(exc, httpx2.TransportError | asyncio.TimeoutError | TimeoutError | ConnectionError):
        return Problem(
            "ApiServerUnreachable",
            f"the operator could not reach the Kubernetes API server ({type(exc).__name__}); it retries",
        )
    return Problem(
        "InternalError",
        f"the operator failed with {type(exc).__name__}; its log has the details (look for this object's "
        "name); it retries",
    )


def _api_failure(exc: ApiError, operator_namespace: str) -> Problem:
    status = exc.status
    code = int(status.code or 0)
    details = status.details
    kind = (details.kind if details else None) or "object"
    name = (details.name if details else None) or ""
    what = f"{kind} {name!r}" if name else kind
    if code == 404 and kind == "namespaces":
        if name == operator_namespace:
            return Problem(
                "OperatorNamespaceMissing",
                f"the operator namespace {name!r} does not exist; the operator keeps its keys and shared "
                f"stores there: create it (kubectl create namespace {name}) or run the operator with "
                "--operator-namespace naming the namespace it is installed in",
            )
        return Problem("NamespaceNotFound", f"namespace {name!r} does not exist")
    if code == 403:
        # The API server's text names the user, verb, resource and namespace, never an object's content.
        return Problem(
            "Forbidden",
            _clip(
                f"the operator's RBAC does not allow this: {status.message or what}; grant it in the "
                "operator's Role/ClusterRole (the chart's rbac.extraRules / rbac.extraClusterRules)"
            ),
        )
    if code == 422 or code == 400:
        causes = details.causes if details and details.causes else []
        fields = sorted({f"{c.field} ({c.reason})" for c in causes if c.field})
        return Problem(
            "Rejected",
            _clip(
                f"the API server rejected {what} ({status.reason or code})"
                + (f" at {', '.join(fields)}" if fields else "")
                + "; check the admission policies and webhooks of the cluster"
            ),
        )
    if code == 409:
        return Problem("Conflict", f"{what} was changed by someone else meanwhile; the operator retries")
    if code == 429 or code >= 500:
        answer = f"the API server answered {code} ({status.reason or ''})"
        return Problem("ApiServerUnavailable", f"{answer}; the operator retries")
    return Problem("ApiError", f"the API server answered {code} ({status.reason or ''}) for {what}")


def _clip(message: str) -> str:
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"

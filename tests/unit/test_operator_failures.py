"""The condition a failed reconcile gets (operator/failures.py): actionable, never quoting what was sent."""

from __future__ import annotations

from typing import Any

import httpx2
from lightkube.core.exceptions import ApiError

from strongroom.operator.failures import describe_failure

CANARY = "canary-7f3a9c"  # a value the API server's message may quote


def api_error(code: int, reason: str, message: str, **details: Any) -> ApiError:
    status = {"kind": "Status", "apiVersion": "v1", "code": code, "reason": reason, "message": message}
    if details:
        status["details"] = details
    request = httpx2.Request("POST", "https://k8s/api")
    return ApiError(request=request, response=httpx2.Response(code, json=status, request=request))


def test_missing_operator_namespace_says_what_to_do() -> None:
    exc = api_error(404, "NotFound", 'namespaces "strongroom-system" not found', kind="namespaces",
                    name="strongroom-system")  # fmt: skip
    problem = describe_failure(exc, "strongroom-system")
    assert problem.reason == "OperatorNamespaceMissing"
    assert "kubectl create namespace strongroom-system" in problem.message
    assert "--operator-namespace" in problem.message


def test_rbac_denial_names_the_fix() -> None:
    text = 'secrets is forbidden: User "system:serviceaccount:x:y" cannot create resource "secrets"'
    problem = describe_failure(api_error(403, "Forbidden", text, kind="secrets"), "ops")
    assert problem.reason == "Forbidden"
    assert "cannot create resource" in problem.message
    assert "rbac.extraRules" in problem.message


def test_a_rejection_names_fields_but_never_quotes_the_value() -> None:
    exc = api_error(
        422, "Invalid", f'Secret "s" is invalid: data[x]: Invalid value: "{CANARY}"', kind="Secret", name="s",
        causes=[{"field": "data[x]", "reason": "FieldValueInvalid", "message": f"Invalid value: {CANARY}"}],
    )  # fmt: skip
    problem = describe_failure(exc, "ops")
    assert problem.reason == "Rejected"
    assert "data[x]" in problem.message
    assert CANARY not in problem.message


def test_other_errors_do_not_quote_their_text() -> None:
    problem = describe_failure(RuntimeError(f"boom {CANARY}"), "ops")
    assert problem.reason == "InternalError"
    assert CANARY not in problem.message

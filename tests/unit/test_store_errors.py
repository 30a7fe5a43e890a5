# The google exception classes carry no annotations on their constructors.
# mypy: disable-error-code="no-untyped-call"
"""SDK errors become StoreErrors with the right reason, and messages never carry a value or a credential."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx2
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from botocore.exceptions import (  # type: ignore[import-untyped]
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
)
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from strongroom.stores import awssm, azurekv, gcpsm, vault
from strongroom.stores.base import (
    AuthenticationFailed,
    InvalidReference,
    InvalidStoreConfig,
    PermissionDenied,
    SecretNotFound,
    StoreError,
    StoreUnavailable,
    VersionNotFound,
)
from strongroom.stores.credentials import StoreContext

VALUE = "s3cr3t-value-that-must-not-leak"


def client_error(code: str, status: int = 400, message: str = "") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message or f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetSecretValue",
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ResourceNotFoundException", 400, SecretNotFound),
        ("UnrecognizedClientException", 400, AuthenticationFailed),
        ("InvalidSignatureException", 400, AuthenticationFailed),
        ("ExpiredTokenException", 400, AuthenticationFailed),
        ("AccessDeniedException", 400, PermissionDenied),
        ("ThrottlingException", 400, StoreUnavailable),
        ("InternalServiceError", 500, StoreUnavailable),
        ("SomethingNew", 503, StoreUnavailable),
        ("DecryptionFailure", 400, PermissionDenied),
        ("InvalidParameterException", 400, InvalidReference),
        ("InvalidRequestException", 400, SecretNotFound),
        ("SomethingNew", 400, StoreError),
    ],
)
def test_aws_error_codes(code: str, status: int, expected: type[StoreError]) -> None:
    mapped = awssm._map_error(client_error(code, status, message=VALUE), "ns/store", "secret 'k'")
    assert type(mapped) is expected
    assert mapped.reason == expected.reason
    assert "ns/store" in str(mapped)
    assert "secret 'k'" in str(mapped)
    assert VALUE not in str(mapped)


def test_aws_unparsed_xml_errors_are_classified() -> None:
    xml = "<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code></Error></Errors></ErrorResponse>"
    assert isinstance(awssm._map_error(client_error("403", 403, xml), "s", "w"), AuthenticationFailed)
    assert isinstance(awssm._map_error(client_error("403", 403, "<html>"), "s", "w"), PermissionDenied)
    assert isinstance(awssm._map_error(client_error("401", 401, "nope"), "s", "w"), AuthenticationFailed)


def test_aws_botocore_errors() -> None:
    assert isinstance(
        awssm._map_error(EndpointConnectionError(endpoint_url="http://x"), "s", "w"), StoreUnavailable
    )
    assert isinstance(awssm._map_error(NoCredentialsError(), "s", "w"), AuthenticationFailed)
    # botocore's parameter validation prints the parameters it got, values included.
    leaky = ParamValidationError(report=f"Invalid type for parameter SecretString, value: {VALUE}")
    assert VALUE in str(leaky)
    mapped = awssm._map_error(leaky, "s", "secret 'k'")
    assert VALUE not in str(mapped)
    assert "ParamValidationError" in str(mapped)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (gexc.NotFound(VALUE), SecretNotFound),
        (gexc.Unauthenticated(VALUE), AuthenticationFailed),
        (gexc.PermissionDenied(VALUE), PermissionDenied),
        (gexc.ServiceUnavailable(VALUE), StoreUnavailable),
        (
            gexc.ServiceUnavailable("Getting metadata from plugin failed with error: invalid_grant"),
            AuthenticationFailed,
        ),
        (gexc.DeadlineExceeded(VALUE), StoreUnavailable),
        (gexc.ResourceExhausted(VALUE), StoreUnavailable),
        (gexc.RetryError(VALUE, cause=None), StoreUnavailable),
        (gexc.InternalServerError(VALUE), StoreUnavailable),
        (gexc.InvalidArgument(VALUE), InvalidReference),
        (gexc.FailedPrecondition(VALUE), VersionNotFound),
        (auth_exc.RefreshError(VALUE), AuthenticationFailed),
        (auth_exc.DefaultCredentialsError(VALUE), AuthenticationFailed),
        (auth_exc.TransportError(VALUE), StoreUnavailable),
        (TimeoutError(), StoreUnavailable),
        (RuntimeError(VALUE), StoreError),
    ],
)
def test_gcp_errors(exc: BaseException, expected: type[StoreError]) -> None:
    mapped = gcpsm._map_error(exc, "ns/store", "secret 'k'")
    assert type(mapped) is expected
    assert VALUE not in str(mapped)
    assert "ns/store" in str(mapped)


def azure_error(cls: type[HttpResponseError], status: int | None, code: str = "", inner: str = "") -> Any:
    exc: Any = cls(message=VALUE)
    exc.status_code = status
    exc.error = SimpleNamespace(code=code, innererror={"code": inner} if inner else None) if code else None
    return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (azure_error(ClientAuthenticationError, 401, "Unauthorized"), AuthenticationFailed),
        (azure_error(ResourceNotFoundError, 404, "SecretNotFound"), SecretNotFound),
        (azure_error(HttpResponseError, 403, "Forbidden", "SecretDisabled"), VersionNotFound),
        (azure_error(HttpResponseError, 403, "Forbidden", "ForbiddenByRbac"), PermissionDenied),
        (azure_error(HttpResponseError, 403), PermissionDenied),
        (azure_error(HttpResponseError, 401), AuthenticationFailed),
        (azure_error(HttpResponseError, 429, "Throttled"), StoreUnavailable),
        (azure_error(HttpResponseError, 503), StoreUnavailable),
        (azure_error(HttpResponseError, 400, "BadParameter"), InvalidReference),
        (azure_error(HttpResponseError, 409, "Conflict"), StoreError),
        (ServiceRequestError(VALUE), StoreUnavailable),
    ],
)
def test_azure_errors(exc: BaseException, expected: type[StoreError]) -> None:
    mapped = azurekv._map_error(exc, "ns/store", "secret 'k'")
    assert type(mapped) is expected
    assert VALUE not in str(mapped)


def test_vault_error_text_is_scrubbed_and_truncated() -> None:
    response = httpx2.Response(400, json={"errors": [f"bad data: {VALUE}", "x" * 1000]})
    text = vault._errors(response, VALUE)
    assert VALUE not in text
    assert "<redacted>" in text
    assert len(text) <= vault._ERROR_TEXT_MAX
    assert vault._errors(httpx2.Response(500, text="not json")) == ""


def test_vault_tls_context() -> None:
    assert vault.tls_context(None, "s") is True
    with pytest.raises(InvalidStoreConfig, match="caBundle"):
        vault.tls_context("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "s")


class NoCredentials:
    async def secret_key(self, name: str, key: str) -> Any:
        raise AssertionError("not expected")

    async def service_account_token(self, service_account: str | None, audience: str | None) -> str:
        raise AssertionError("not expected")


def test_context_naming_prefixes_the_store() -> None:
    ctx = StoreContext("store", "team-a", NoCredentials(), "strongroom-system")
    with pytest.raises(InvalidReference, match=r"^store 'team-a/store': bad key$"), ctx.naming():
        raise InvalidReference("bad key")
    with pytest.raises(InvalidReference, match=r"^store 'x': already named$"), ctx.naming():
        raise InvalidReference("store 'x': already named")


def test_context_refuses_operator_identity_outside_operator_namespace() -> None:
    StoreContext("s", "strongroom-system", NoCredentials(), "strongroom-system").require_operator_namespace(
        "x", "y"
    )
    with pytest.raises(InvalidStoreConfig, match="operator namespace 'strongroom-system'; do this instead"):
        StoreContext("s", "team-a", NoCredentials(), "strongroom-system").require_operator_namespace(
            "using the operator's identity", "do this instead"
        )

"""Upstream failures -> pool class + the client's error (before the stream and inside it)."""

from __future__ import annotations

import json

import pytest

from kiro_protocol.http._error_bodies import anthropic_error_body
from kiro_protocol._errors import ErrorKind
from kiro_protocol.pool._upstream_errors import (
    PROMPT_TOO_LONG_PREFIX,
    FailureClass,
    classify_stream_failure,
    classify_upstream_failure,
    connection_failure,
    is_content_length_exception,
    stream_interrupted,
)

CONTENT_LENGTH_BODY = b'{"message":"Input content length exceeds threshold.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}'


@pytest.mark.parametrize(
    ("status", "body", "failure_class", "kind", "client_status"),
    [
        (400, CONTENT_LENGTH_BODY, FailureClass.INPUT_TOO_LONG, ErrorKind.INVALID_REQUEST, 400),
        (400, b'{"message":"Input is too long."}', FailureClass.INPUT_TOO_LONG, ErrorKind.INVALID_REQUEST, 400),
        (400, b'{"message":"Improperly formed request.","reason":null}', FailureClass.MALFORMED_REQUEST, ErrorKind.INVALID_REQUEST, 400),
        (400, b"something else", FailureClass.BAD_REQUEST, ErrorKind.INVALID_REQUEST, 400),
        (429, b'{"message":"Due to suspicious activity, we are imposing temporary limits"}', FailureClass.THROTTLED, ErrorKind.RATE_LIMIT, 429),
        (408, b"", FailureClass.THROTTLED, ErrorKind.RATE_LIMIT, 429),
        (402, b'{"message":"quota","reason":"MONTHLY_REQUEST_COUNT"}', FailureClass.QUOTA_EXHAUSTED, ErrorKind.RATE_LIMIT, 429),
        (429, b'{"error":{"reason":"MONTHLY_REQUEST_COUNT"}}', FailureClass.QUOTA_EXHAUSTED, ErrorKind.RATE_LIMIT, 429),
        (403, b'{"message":"The bearer token included in the request is invalid."}', FailureClass.INVALID_TOKEN, ErrorKind.API, 502),
        (401, b"", FailureClass.INVALID_TOKEN, ErrorKind.API, 502),
        (500, b'{"message":"internal"}', FailureClass.SERVER_ERROR, ErrorKind.API, 500),
        (503, b"unavailable", FailureClass.SERVER_ERROR, ErrorKind.OVERLOADED, 529),
        (502, b"", FailureClass.SERVER_ERROR, ErrorKind.OVERLOADED, 529),
    ],
)
def test_http_failures(
    status: int, body: bytes, failure_class: FailureClass, kind: ErrorKind, client_status: int
) -> None:
    failure = classify_upstream_failure(status, body)
    assert failure.failure_class is failure_class
    assert failure.client_error.kind is kind
    assert failure.client_error.status_hint == client_status
    assert failure.status == status
    # The client body is Anthropic's shape with the same kind.
    rendered = json.loads(anthropic_error_body(failure.client_error.kind, failure.client_error.message))
    assert rendered["type"] == "error" and rendered["error"]["type"] == kind.value


def test_input_too_long_is_worded_like_anthropic() -> None:
    failure = classify_upstream_failure(400, CONTENT_LENGTH_BODY)
    assert failure.client_error.message.startswith(f"{PROMPT_TOO_LONG_PREFIX}: ")
    assert failure.reason == "CONTENT_LENGTH_EXCEEDS_THRESHOLD"
    assert not failure.failure_class.retry_elsewhere


def test_improperly_formed_quotes_kiros_message() -> None:
    failure = classify_upstream_failure(400, b'{"message":"Improperly formed request.","reason":null}')
    assert "Improperly formed request." in failure.client_error.message


def test_retry_elsewhere_only_for_account_or_transient_problems() -> None:
    retryable = {c for c in FailureClass if c.retry_elsewhere}
    assert retryable == {
        FailureClass.INVALID_TOKEN,
        FailureClass.QUOTA_EXHAUSTED,
        FailureClass.THROTTLED,
        FailureClass.SERVER_ERROR,
        FailureClass.CONNECTION_FAILED,
    }


@pytest.mark.parametrize("body", [b"", b"\xff\xfe garbage", b"[1,2]", b'{"message": 5}', b"null", b"x" * 10_000])
def test_any_body_is_tolerated_and_quoted_short(body: bytes) -> None:
    failure = classify_upstream_failure(418, body)
    assert failure.failure_class is FailureClass.BAD_REQUEST
    assert len(failure.client_error.message) < 700


def test_connection_failure() -> None:
    failure = connection_failure("connect timeout")
    assert failure.failure_class is FailureClass.CONNECTION_FAILED and failure.status == 0
    assert failure.client_error.kind is ErrorKind.OVERLOADED and "connect timeout" in failure.client_error.message


# -- inside a 200 stream -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exception_type", "message", "failure_class", "kind"),
    [
        ("ThrottlingException", "Rate exceeded", FailureClass.THROTTLED, ErrorKind.OVERLOADED),
        ("ThrottlingException", "MONTHLY_REQUEST_COUNT reached", FailureClass.QUOTA_EXHAUSTED, ErrorKind.RATE_LIMIT),
        ("InternalServerException", "oops", FailureClass.SERVER_ERROR, ErrorKind.API),
        ("ServiceUnavailableException", "later", FailureClass.SERVER_ERROR, ErrorKind.OVERLOADED),
        ("AccessDeniedException", "no", FailureClass.INVALID_TOKEN, ErrorKind.API),
        ("ValidationException", "Improperly formed request.", FailureClass.MALFORMED_REQUEST, ErrorKind.INVALID_REQUEST),
        ("ValidationException", "CONTENT_LENGTH_EXCEEDS_THRESHOLD", FailureClass.INPUT_TOO_LONG, ErrorKind.INVALID_REQUEST),
        ("ContentLengthExceededException", "cut", FailureClass.INPUT_TOO_LONG, ErrorKind.INVALID_REQUEST),
        ("invalidStateEvent", "INVALID_TASK_ASSIST_PLAN: x", FailureClass.MALFORMED_REQUEST, ErrorKind.INVALID_REQUEST),
        ("", "", FailureClass.SERVER_ERROR, ErrorKind.API),
        ("BrandNewException", "?", FailureClass.SERVER_ERROR, ErrorKind.API),
    ],
)
def test_stream_failures(exception_type: str, message: str, failure_class: FailureClass, kind: ErrorKind) -> None:
    failure = classify_stream_failure(exception_type, message)
    assert failure.failure_class is failure_class
    assert failure.client_error.kind is kind
    assert failure.status == 200
    if message:
        assert message.split(":")[0] in failure.client_error.message


def test_content_length_in_stream_is_prompt_too_long() -> None:
    failure = classify_stream_failure("ContentLengthExceededException", "Response content length exceeded")
    assert failure.client_error.message.startswith(PROMPT_TOO_LONG_PREFIX)
    assert failure.client_error.status_hint == 400


@pytest.mark.parametrize(
    ("exception_type", "message", "expected"),
    [
        ("ContentLengthExceededException", "", True),
        ("ValidationException", "reason CONTENT_LENGTH_EXCEEDS_THRESHOLD", True),
        ("CONTENT_LENGTH_EXCEEDS_THRESHOLD", "", True),
        ("ThrottlingException", "content length", False),
    ],
)
def test_is_content_length_exception(exception_type: str, message: str, expected: bool) -> None:
    assert is_content_length_exception(exception_type, message) is expected


def test_stream_interrupted_is_a_bad_gateway_api_error() -> None:
    failure = stream_interrupted("bad CRC at offset 12")
    assert failure.failure_class is FailureClass.CONNECTION_FAILED
    assert failure.client_error.kind is ErrorKind.API and failure.client_error.status_hint == 502
    assert failure.client_error.message == "bad CRC at offset 12"

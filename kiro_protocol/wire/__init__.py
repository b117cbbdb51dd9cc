"""The wire formats: AWS EventStream framing (decoder and encoder) and server-sent events.

This module is the public API of ``kiro_protocol.wire``; its modules are private.
"""

from ._eventstream import (
    decode_all,
    DEFAULT_MAX_MESSAGE_LENGTH,
    encode_message,
    END_OF_STREAM,
    EndOfStream,
    EndOfStreamType,
    EventStreamDecoder,
    Message,
)
from ._eventstream_errors import (
    ChecksumMismatch,
    EventStreamError,
    InvalidLength,
    MalformedHeader,
    TruncatedMessage,
)
from ._eventstream_headers import (
    encode_headers,
    Header,
    HeaderType,
    HeaderValue,
    parse_header_block,
)
from ._http1_client import (
    encode_request,
    HttpAnswerReader,
    may_send_again,
    ResponseEnd,
    ResponseHead,
    UpstreamHttpError,
)
from ._sse import (
    sse_event,
    SSE_HEADERS,
    SSE_MEDIA_TYPE,
)

__all__ = [
    "decode_all",
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "encode_message",
    "END_OF_STREAM",
    "EndOfStream",
    "EndOfStreamType",
    "EventStreamDecoder",
    "Message",
    "ChecksumMismatch",
    "EventStreamError",
    "InvalidLength",
    "MalformedHeader",
    "TruncatedMessage",
    "encode_headers",
    "encode_request",
    "HttpAnswerReader",
    "may_send_again",
    "ResponseEnd",
    "ResponseHead",
    "UpstreamHttpError",
    "Header",
    "HeaderType",
    "HeaderValue",
    "parse_header_block",
    "sse_event",
    "SSE_HEADERS",
    "SSE_MEDIA_TYPE",
]

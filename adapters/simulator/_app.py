"""The simulator's HTTP side: Kiro's endpoints and the ``/_sim`` control routes.

A ``Handler`` for the anyio server (the same h11/h2 pumps as the gateway). Routes are matched on
the last path segment, so any base URL works: ``KIRO_UPSTREAM_URL=http://127.0.0.1:N`` serves
``/generateAssistantResponse``, ``/getUsageLimits`` and ``/ListAvailableModels``;
``KIRO_SOCIAL_REFRESH_URL=http://127.0.0.1:N/refreshToken`` and
``KIRO_IDC_REFRESH_URL=http://127.0.0.1:N/token`` the two refresh flows.

``generateAssistantResponse`` checks what Kiro checks, in Kiro's order: the bearer token (issued
here, unexpired), the content type, the JSON, the body rules (the core's linter: a violation is
answered ``400 Improperly formed request`` like Kiro; an over-large body or history ``400
CONTENT_LENGTH_EXCEEDS_THRESHOLD``), the model id; then the script decides the answer.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qs

import anyio

from adapters.anyio_server import Request, RequestBody, RequestHead, Responder, whole_request
from kiro_protocol import ContextUsage, KIRO_MODELS, lint_kiro_body, LintLimits, Metering, TokenUsage, UpstreamEvent

from ._documents import models_document, offers, usage_document, web_search_text
from ._markers import (
    echo_auth_failure,
    HTTP_FAILURES,
    IMPROPERLY_FORMED,
    INPUT_TOO_LONG,
    INVALID_BEARER,
    INVALID_MODEL,
    kiro_error_body,
    parse_markers,
)
from ._script import Ending, ErrorReply, StreamReply, answer, read_turn
from ._state import ACCOUNT_TAGS, SimulatorState, TokenProblem

__all__ = ["SimulatorApp", "KNOWN_MODEL_IDS"]

log = logging.getLogger("kiro2api.simulator")

#: Model ids ``generateAssistantResponse`` accepts: the core's table, ``auto`` and the legacy
#: upper-case ids older clients (the Go reference) send.
KNOWN_MODEL_IDS = frozenset(
    {m.kiro_id for m in KIRO_MODELS}
    | {"auto", "CLAUDE_SONNET_4_5_20250929_V1_0", "CLAUDE_SONNET_4_20250514_V1_0", "CLAUDE_3_7_SONNET_20250219_V1_0"}
)
_JSON = "application/json"
_EVENTSTREAM = "application/vnd.amazon.eventstream"
# Lint rules whose violation Kiro answers with "input too long" rather than "improperly formed".
_SIZE_RULES = frozenset({"body-size", "history-length"})
# Request headers kept in the records (the rest, Authorization included, are not shown).
_RECORDED_HEADERS = frozenset(
    {
        "content-type",
        "accept",
        "host",
        "user-agent",
        "x-amz-user-agent",
        "x-amzn-kiro-agent-mode",
        "x-amzn-codewhisperer-optout",
        "amz-sdk-invocation-id",
        "amz-sdk-request",
        "tokentype",
    }
)

Route = Callable[[Request, Responder], Awaitable[None]]


def _dumps(obj: object) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:  # a recorded body with a lone surrogate: escape it instead
        return json.dumps(obj, separators=(",", ":")).encode()


def _headers(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers if k in _RECORDED_HEADERS}


def _is_json(request: Request) -> bool:
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    return content_type == _JSON or content_type.endswith("+json") or content_type.startswith("application/x-amz-json")


class SimulatorApp:
    """The simulator's request handler (give it to ``adapters.anyio_server.Server``)."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self._routes: dict[tuple[str, str], Route] = {
            ("POST", "generateAssistantResponse"): self._generate,
            ("POST", "refreshToken"): self._social_refresh,
            ("POST", "token"): self._idc_refresh,
            ("GET", "getUsageLimits"): self._usage_limits,
            ("GET", "ListAvailableModels"): self._models,
            ("POST", "mcp"): self._mcp,
        }
        self._control: dict[tuple[str, str], Route] = {
            ("GET", "/_sim/requests"): self._sim_requests,
            ("POST", "/_sim/reset"): self._sim_reset,
            ("POST", "/_sim/expire-tokens"): self._sim_expire,
            ("POST", "/_sim/revoke"): self._sim_revoke,
            ("POST", "/_sim/throttle"): self._sim_throttle,
            ("POST", "/_sim/refresh-outage"): self._sim_refresh_outage,
            ("GET", "/"): self._health,
            ("GET", "/health"): self._health,
        }

    async def __call__(self, head: RequestHead, body: RequestBody, respond: Responder) -> None:
        request = await whole_request(head, body, respond)
        if request is not None:
            await self.serve(request, respond)

    async def serve(self, request: Request, respond: Responder) -> None:
        """Answer one whole request."""
        path = request.target.split("?", 1)[0]
        route = self._control.get((request.method, path))
        if route is None:
            operation = path.rstrip("/").rsplit("/", 1)[-1]
            route = self._routes.get((request.method, operation))
            if route is None:
                known = any(op == operation for _, op in self._routes) or path in {p for _, p in self._control}
                status = 405 if known else 404
                message = "Method Not Allowed" if known else "UnknownOperationException"
                await self._json(respond, status, kiro_error_body(message))
                return
        tap = _StatusTap(respond)
        try:
            await route(request, tap)
        except Exception:
            log.exception("simulator: %s %s failed", request.method, path)
            if tap.status is None:
                body = kiro_error_body("Simulator failure (see its log).", None, "InternalServerException")
                await self._json(tap, 500, body)
            # Otherwise the stream had started: returning unfinished makes the pump close it.
        finally:
            level = logging.INFO if self.state.config.log_requests else logging.DEBUG
            log.log(level, "%s %s -> %s", request.method, path, tap.status if tap.status is not None else "no answer")

    # -- helpers -------------------------------------------------------------------------------

    async def _json(
        self, respond: Responder, status: int, body: bytes, *, error_type: str | None = None
    ) -> None:
        headers = [("content-type", _JSON), ("x-amzn-requestid", str(uuid.uuid4()))]
        if error_type is not None:
            headers.append(("x-amzn-errortype", error_type))
        await respond.send_response(status, headers, body)

    def _record(self, request: Request, endpoint: str, **fields: object) -> dict[str, object]:
        self.state.counters[endpoint] += 1
        entry: dict[str, object] = {
            "method": request.method,
            "path": request.target.split("?", 1)[0],
            "endpoint": endpoint,
            "headers": _headers(request),
        }
        entry.update(fields)
        return self.state.record(entry)

    # -- Kiro: generateAssistantResponse ---------------------------------------------------------

    async def _generate(self, request: Request, respond: Responder) -> None:
        state = self.state
        issued = state.bearer(request.header("authorization"))
        entry = self._record(request, "generateAssistantResponse", account=issued.account if issued else None)

        async def fail(status: int, body: bytes, error_type: str | None, why: str) -> None:
            entry.update(status=status, outcome=why)
            await self._json(respond, status, body, error_type=error_type)

        if issued is None:
            await fail(403, INVALID_BEARER, "AccessDeniedException", "invalid-token")
            return
        state.per_account[issued.account] += 1
        if issued.tags:
            tag = issued.tags[0]
            failure = HTTP_FAILURES[ACCOUNT_TAGS[tag]](())
            entry["scenario"] = tag
            await fail(failure.status, failure.body, failure.error_type, "account-tag")
            return
        if state.now() < state.throttled_until:
            failure = HTTP_FAILURES["throttle"](())
            entry["scenario"] = "throttle-window"
            await fail(failure.status, failure.body, failure.error_type, "throttled")
            return
        if not _is_json(request):
            await fail(400, IMPROPERLY_FORMED, "ValidationException", "content-type")
            return
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            await fail(400, IMPROPERLY_FORMED, "ValidationException", "invalid-json")
            return
        entry["body"] = body
        limits = LintLimits(
            max_body_bytes=state.config.max_body_bytes, max_history_entries=state.config.max_history_entries
        )
        violations = lint_kiro_body(body, limits=limits, body_size=len(request.body))
        if violations:
            entry["violations"] = [{"rule": v.rule, "path": v.path, "message": v.message} for v in violations]
            if all(v.rule in _SIZE_RULES for v in violations):
                await fail(400, INPUT_TOO_LONG, "ValidationException", "input-too-long")
            else:
                await fail(400, IMPROPERLY_FORMED, "ValidationException", "lint")
            return
        turn = read_turn(body)
        if turn.model not in KNOWN_MODEL_IDS or not offers(turn.model, free_tier=issued.free_tier):
            await fail(400, INVALID_MODEL, "ValidationException", "invalid-model")
            return
        seed = state.next_seed()
        reply = answer(body, seed=seed)
        if reply.once and reply.scenario is not None and not state.fire_once(reply.scenario, turn.prompt):
            reply = answer(body, seed=seed, failures=False)
        entry["scenario"] = reply.scenario
        if isinstance(reply, ErrorReply):
            failure = reply.failure
            if reply.scenario == "echo-auth":
                failure = echo_auth_failure(request.header("authorization") or "")
            await fail(failure.status, failure.body, failure.error_type, "scenario")
            return
        entry["sent"] = {
            "text": reply.text,
            "reasoning": reply.reasoning,
            "toolCalls": [{"toolUseId": c.tool_use_id, "name": c.name, "input": c.arguments} for c in reply.tool_calls],
        }
        entry["metered"] = _metered(reply.events)
        await self._stream(respond, reply, entry)

    async def _stream(self, respond: Responder, reply: StreamReply, entry: dict[str, object]) -> None:
        entry.update(status=200, outcome="streaming")
        pace = (reply.pace_ms if reply.pace_ms is not None else self.state.config.pace_ms) / 1000
        headers = [("content-type", _EVENTSTREAM), ("x-amzn-requestid", str(uuid.uuid4()))]
        try:
            await respond.start_stream(200, headers)
            for i, chunk in enumerate(reply.chunks):
                if i and pace > 0:
                    await anyio.sleep(pace)
                if i == reply.stall_before and reply.stall_ms:
                    await anyio.sleep(reply.stall_ms / 1000)
                await respond.send_chunk(chunk)
                entry["chunksSent"] = i + 1
            if reply.ending is Ending.DROP:
                # Returning without ending the body makes the pump close the connection mid-frame.
                entry["outcome"] = "dropped"
                return
            await respond.end_stream()
            entry["outcome"] = "complete"
        except BaseException:
            # Cancelled (the client, i.e. the gateway, went away) or the socket broke.
            entry["outcome"] = "client-disconnected"
            raise

    # -- Kiro: refresh endpoints ----------------------------------------------------------------

    def _read_json(self, request: Request) -> dict[str, object] | None:
        try:
            body = json.loads(request.body)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _refresh_outage(self, request: Request, respond: Responder, endpoint: str) -> bool:
        """During ``POST /_sim/refresh-outage``: answer 503 and say so (True)."""
        if self.state.now() >= self.state.refresh_down_until:
            return False
        entry = self._record(request, endpoint)
        entry.update(status=503, outcome="refresh-outage")
        body = kiro_error_body("Service is temporarily unavailable.", None, "ServiceUnavailableException")
        await self._json(respond, 503, body, error_type="ServiceUnavailableException")
        return True

    async def _social_refresh(self, request: Request, respond: Responder) -> None:
        if await self._refresh_outage(request, respond, "refreshToken"):
            return
        body = self._read_json(request)
        token = body.get("refreshToken") if body is not None else None
        entry = self._record(request, "refreshToken", body={"refreshToken": "***"} if body is not None else None)
        try:
            if body is None or not _is_json(request):
                raise TokenProblem("Improperly formed request.", permanent=False)
            access, ttl, returned = self.state.issue(token if isinstance(token, str) else "", flow="social")
        except TokenProblem as exc:
            status = 401 if exc.permanent else 400
            entry.update(status=status, outcome="refused")
            await self._json(respond, status, kiro_error_body(str(exc), "invalid_grant" if exc.permanent else None))
            return
        issued = self.state.tokens[access]
        entry.update(status=200, outcome="issued", account=issued.account)
        answer_body = {
            "accessToken": access,
            "expiresIn": int(ttl) if float(ttl).is_integer() else ttl,
            "profileArn": issued.profile_arn,
            "refreshToken": returned,
        }
        await self._json(respond, 200, _dumps(answer_body))

    async def _idc_refresh(self, request: Request, respond: Responder) -> None:
        if await self._refresh_outage(request, respond, "token"):
            return
        body = self._read_json(request)
        entry = self._record(
            request,
            "token",
            body={k: ("***" if k in ("clientSecret", "refreshToken") else v) for k, v in (body or {}).items()},
        )

        async def oidc_error(status: int, error: str, description: str) -> None:
            entry.update(status=status, outcome=error)
            await self._json(respond, status, _dumps({"error": error, "error_description": description}))

        if body is None:
            await oidc_error(400, "invalid_request", "The request body is not a JSON object.")
            return
        client_id, secret = body.get("clientId"), body.get("clientSecret")
        if not isinstance(client_id, str) or not client_id or not isinstance(secret, str) or not secret:
            await oidc_error(400, "invalid_request", "clientId and clientSecret are required.")
            return
        if "invalid" in secret.lower():
            await oidc_error(401, "invalid_client", "Invalid client credentials provided.")
            return
        if body.get("grantType") != "refresh_token":
            await oidc_error(400, "unsupported_grant_type", "grantType must be refresh_token.")
            return
        token = body.get("refreshToken")
        try:
            access, ttl, returned = self.state.issue(token if isinstance(token, str) else "", flow="idc")
        except TokenProblem as exc:
            if exc.permanent:
                await oidc_error(400, "invalid_grant", "Invalid refresh token provided")
            else:
                await oidc_error(400, "invalid_request", str(exc))
            return
        entry.update(status=200, outcome="issued", account=self.state.tokens[access].account)
        answer_body = {
            "accessToken": access,
            "expiresIn": int(ttl) if float(ttl).is_integer() else ttl,
            "refreshToken": returned,
            "tokenType": "Bearer",
        }
        await self._json(respond, 200, _dumps(answer_body))

    # -- Kiro: usage limits and models --------------------------------------------------------------

    async def _authorised(self, request: Request, respond: Responder, endpoint: str) -> dict[str, object] | None:
        issued = self.state.bearer(request.header("authorization"))
        entry = self._record(request, endpoint, account=issued.account if issued else None)
        if issued is None:
            entry.update(status=403, outcome="invalid-token")
            await self._json(respond, 403, INVALID_BEARER, error_type="AccessDeniedException")
            return None
        entry.update(status=200, outcome="complete")
        return entry

    async def _usage_limits(self, request: Request, respond: Responder) -> None:
        entry = await self._authorised(request, respond, "getUsageLimits")
        if entry is None:
            return
        account = str(entry["account"])
        query = parse_qs(request.target.partition("?")[2])
        document = usage_document(
            account,
            used=self.state.per_account[account],
            now=self.state.now(),
            with_email="isEmailRequired" in query,
            exhausted="[sim-quota]" in account,
            free_tier=self._free_tier(request),
        )
        await self._json(respond, 200, _dumps(document))

    async def _models(self, request: Request, respond: Responder) -> None:
        if await self._authorised(request, respond, "ListAvailableModels") is None:
            return
        await self._json(respond, 200, _dumps(models_document(free_tier=self._free_tier(request))))

    def _free_tier(self, request: Request) -> bool:
        issued = self.state.bearer(request.header("authorization"))
        return issued is not None and issued.free_tier

    async def _mcp(self, request: Request, respond: Responder) -> None:
        """Kiro's MCP endpoint (JSON-RPC 2.0), used for web search.

        See docs/kiro-protocol.md, Web search through MCP. Markers in the query choose a failure:
        the HTTP failure markers (``[[sim:throttle]]``...) answer as ``generateAssistantResponse``
        does, ``[[sim:search-error...]]`` breaks the answer itself (docs/simulator.md).
        """
        entry = await self._authorised(request, respond, "mcp")
        if entry is None:
            return
        call = self._read_json(request)
        entry["body"] = call
        entry["profileArn"] = request.header("x-amzn-kiro-profile-arn")
        call_id = call.get("id") if call is not None else None
        params = call.get("params") if call is not None else None
        params = params if isinstance(params, dict) else {}
        arguments = params.get("arguments")
        query = arguments.get("query") if isinstance(arguments, dict) else None
        if call is None or call.get("jsonrpc") != "2.0" or call.get("method") != "tools/call":
            error = {"code": -32600 if call is None else -32601, "message": "expected a tools/call request"}
        elif params.get("name") != "web_search" or not isinstance(query, str) or not query.strip():
            error = {"code": -32602, "message": "only web_search with a non-empty query is available"}
        else:
            entry["query"] = query
            await self._search(query, call_id, entry, respond)
            return
        entry["outcome"] = "rpc-error"
        await self._json(respond, 200, _dumps({"id": call_id, "jsonrpc": "2.0", "error": error}))

    async def _search(self, query: str, call_id: object, entry: dict[str, object], respond: Responder) -> None:
        markers = parse_markers(query)
        failure = HTTP_FAILURES.get(markers.failure or "")
        if failure is not None and markers.failure is not None:
            if not markers.once or self.state.fire_once(markers.failure, query):
                answer = failure(markers.failure_args)
                entry.update(status=answer.status, outcome="scenario", scenario=markers.failure)
                await self._json(respond, answer.status, answer.body, error_type=answer.error_type)
                return
        kind = markers.search_error
        if kind is not None:
            entry.update(outcome="search-error", scenario=f"search-error:{kind}")
        if kind == "garbage":
            headers = [("content-type", "text/html"), ("x-amzn-requestid", str(uuid.uuid4()))]
            await respond.send_response(200, headers, b"<html><body>Service Unavailable</body></html>")
            return
        if kind == "rpc":
            error = {"code": -32603, "message": "Internal error: the web search is unavailable (simulated)"}
            await self._json(respond, 200, _dumps({"id": call_id, "jsonrpc": "2.0", "error": error}))
            return
        if kind == "tool":
            text = "web_search failed: the search provider timed out (simulated)"
            result: dict[str, object] = {"content": [{"type": "text", "text": text}], "isError": True}
        elif kind == "results":
            text = json.dumps({"results": [], "error": "search quota exceeded (simulated)"})
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        else:
            result = {"content": [{"type": "text", "text": web_search_text(query, self.state.now())}], "isError": False}
        await self._json(respond, 200, _dumps({"id": call_id, "jsonrpc": "2.0", "result": result}))

    # -- control routes --------------------------------------------------------------------------

    async def _sim_requests(self, request: Request, respond: Responder) -> None:
        document = {
            "requests": list(self.state.records),
            "counters": dict(self.state.counters),
            "perAccount": dict(self.state.per_account),
            "issuedTokens": len(self.state.tokens),
        }
        await self._json(respond, 200, _dumps(document))

    async def _sim_reset(self, request: Request, respond: Responder) -> None:
        self.state.reset()
        await self._json(respond, 200, _dumps({"reset": True}))

    async def _sim_expire(self, request: Request, respond: Responder) -> None:
        await self._json(respond, 200, _dumps({"expired": self.state.expire_all()}))

    async def _sim_throttle(self, request: Request, respond: Responder) -> None:
        """Every generate call answers 429 for the next ``seconds`` (a burst of throttling)."""
        body = self._read_json(request) or {}
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
            await self._json(respond, 400, kiro_error_body('expected {"seconds": 0..3600}'))
            return
        self.state.throttled_until = self.state.now() + seconds
        await self._json(respond, 200, _dumps({"throttledUntil": self.state.throttled_until}))

    async def _sim_refresh_outage(self, request: Request, respond: Responder) -> None:
        """Both refresh endpoints answer 503 for the next ``seconds`` (0: back at once)."""
        body = self._read_json(request) or {}
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
            await self._json(respond, 400, kiro_error_body('expected {"seconds": 0..3600}'))
            return
        self.state.refresh_down_until = self.state.now() + seconds
        await self._json(respond, 200, _dumps({"refreshDownUntil": self.state.refresh_down_until}))

    async def _sim_revoke(self, request: Request, respond: Responder) -> None:
        body = self._read_json(request) or {}
        token = body.get("refreshToken")
        if not isinstance(token, str) or not token:
            await self._json(respond, 400, kiro_error_body('expected {"refreshToken": "..."}'))
            return
        self.state.revoke(token)
        await self._json(respond, 200, _dumps({"revoked": True}))

    async def _health(self, request: Request, respond: Responder) -> None:
        await self._json(respond, 200, _dumps({"status": "ok", "service": "kiro2api upstream simulator"}))


class _StatusTap:
    """Passes a responder through, remembering the status (for the log line)."""

    def __init__(self, inner: Responder) -> None:
        self._inner = inner
        self.status: int | None = None

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.status = status
        await self._inner.send_response(status, headers, body)

    async def start_stream(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> None:
        self.status = status
        await self._inner.start_stream(status, headers, body, end=end)

    async def send_chunk(self, data: bytes) -> None:
        await self._inner.send_chunk(data)

    async def end_stream(self, data: bytes = b"") -> None:
        await self._inner.end_stream(data)


def _metered(events: Sequence[UpstreamEvent]) -> dict[str, object]:
    """What the answer's own frames meter: the credits charged, the context share, and the token
    counts when ``[[sim:token-usage]]`` sent them (what usage accounting must add up to)."""
    metered: dict[str, object] = {}
    credits = 0.0
    for event in events:
        if isinstance(event, Metering) and event.usage is not None:
            credits += event.usage
        elif isinstance(event, ContextUsage):
            metered["contextUsagePercentage"] = event.percentage
        elif isinstance(event, TokenUsage):
            metered["inputTokens"] = event.uncached_input_tokens
            metered["outputTokens"] = event.output_tokens
    metered["credits"] = round(credits, 6)
    return metered

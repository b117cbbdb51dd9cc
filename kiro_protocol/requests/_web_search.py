"""Which requests are web searches, and what they search for (docs/web-search.md).

Claude Code's ``WebSearch`` tool sends a request of its own: one server tool
``{"type": "web_search_20250305", "name": "web_search"}``, ``tool_choice`` forcing it, and the
text ``Perform a web search for the query: ...``. Kiro's model cannot run a server tool, so such a
request is not sent to the model at all: the gateway searches through Kiro's MCP endpoint and
answers in Anthropic's server-tool shape.

A request is a web search when it offers a web-search server tool and either offers nothing
else or forces that tool with ``tool_choice``. A web-search tool beside ordinary tools, not
forced, is left out like every server tool and the model answers with the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import LocalProtocolError
from ._model import Request, TextBlock, Tool, ToolKind

__all__ = ["WebSearch", "web_search_of", "WEB_SEARCH_PROMPT", "MAX_QUERY_CHARS"]

#: What Claude Code's WebSearch tool puts before the query.
WEB_SEARCH_PROMPT = "Perform a web search for the query: "
#: Longer queries are cut (a search engine reads the first words; Kiro's limit is unknown).
MAX_QUERY_CHARS = 1_000
_TYPE_PREFIX = "web_search_"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSearch:
    """A request to answer with one web search."""

    query: str
    #: The server tool's ``type`` as the client sent it (``web_search_20250305``).
    tool_type: str
    #: Only results from these domains (and their subdomains) are kept; none: every domain.
    allowed_domains: tuple[str, ...] = ()
    #: Results from these domains (and their subdomains) are dropped.
    blocked_domains: tuple[str, ...] = ()

    def keeps(self, url: str) -> bool:
        """Whether a result at ``url`` passes the client's domain filters."""
        if not self.allowed_domains and not self.blocked_domains:
            return True
        location = _host_and_path(url)
        if self.allowed_domains:
            return any(_within(location, d) for d in self.allowed_domains)
        return not any(_within(location, d) for d in self.blocked_domains)


def _is_web_search(tool: Tool) -> bool:
    # The Responses API's tool is plain "web_search"; Anthropic's are versioned.
    return tool.kind is ToolKind.SERVER and (tool.type.startswith(_TYPE_PREFIX) or tool.type == "web_search")


def web_search_of(request: Request) -> WebSearch | None:
    """The web search ``request`` asks for, or None when it is an ordinary model request.

    Raises:
        LocalProtocolError: a web-search request with no query text (400).
    """
    tools = request.tools
    if not tools:
        return None  # the common case, decided without a loop
    searches = [t for t in tools if _is_web_search(t)]
    if not searches:
        return None
    choice = request.tool_choice
    if choice is not None and choice.type == "none":
        return None
    forced = choice is not None and choice.type == "tool" and any(t.name == choice.name for t in searches)
    if not forced and len(searches) != len(tools):
        return None
    tool = searches[0]
    return WebSearch(
        query=_query(request),
        tool_type=tool.type,
        allowed_domains=tool.allowed_domains,
        blocked_domains=tool.blocked_domains,
    )


def _host_and_path(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url
    host, _, path = rest.partition("/")
    host = host.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return f"{host}/{path}"


def _within(location: str, domain: str) -> bool:
    # "example.com" covers example.com and its subdomains; "example.com/blog" that path too.
    domain = domain.split("://", 1)[-1].rstrip("/")
    wanted_host, _, wanted_path = domain.partition("/")
    host, _, path = location.partition("/")
    if host != wanted_host and not host.endswith("." + wanted_host):
        return False
    return not wanted_path or path == wanted_path or path.startswith(wanted_path + "/")


def _query(request: Request) -> str:
    """The last user message's text without Claude Code's prefix."""
    for index in range(len(request.messages) - 1, -1, -1):
        message = request.messages[index]
        if message.role != "user":
            continue
        text = "\n".join(b.text for b in message.content if isinstance(b, TextBlock)).strip()
        if text.startswith(WEB_SEARCH_PROMPT.strip()):
            text = text[len(WEB_SEARCH_PROMPT.strip()) :]
        query = " ".join(text.split())[:MAX_QUERY_CHARS].strip()
        if query:
            return query
        raise LocalProtocolError(
            f"messages.{index}.content: a web search needs a query (the user's text is empty)",
            param=f"messages.{index}.content",
        )
    raise LocalProtocolError("messages: a web search needs a user message with the query", param="messages")

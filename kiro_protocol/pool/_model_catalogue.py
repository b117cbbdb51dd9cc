"""``ListAvailableModels``: which Kiro models an account's tier offers (docs/kiro-protocol.md,
Model catalogue).

Asked in the background together with the usage check; the answer's model ids are kept in the
account's state, and a request is routed only to accounts that offer its model (the free tier
has no Opus; sent there, a request fails with ``INVALID_MODEL_ID``).
"""

from __future__ import annotations

import json

from ..http._messages import HttpRequest
from ._credentials import AccountConfig
from ._kiro_identity import ClientVersions, Endpoints, api_region, usage_limits_headers

__all__ = ["ModelCatalogueError", "build_models_request", "parse_available_models"]

# More ids than any catalogue holds: an answer beyond it is not a catalogue.
_MAX_MODELS = 1000
_MAX_ID_LENGTH = 200


class ModelCatalogueError(ValueError):
    """The answer is not the model list it should be."""


def build_models_request(
    account: AccountConfig,
    *,
    access_token: str,
    profile_arn: str | None,
    versions: ClientVersions,
    endpoints: Endpoints,
    invocation_id: str,
) -> HttpRequest:
    """The ``ListAvailableModels`` GET for ``account`` (same client and headers as the usage call)."""
    arn = profile_arn or account.profile_arn
    url = endpoints.models_url(api_region(account, arn, endpoints.default_region), arn)
    headers = usage_limits_headers(
        account=account, access_token=access_token, url=url, invocation_id=invocation_id, versions=versions
    )
    return HttpRequest(method="GET", url=url, headers=headers)


def parse_available_models(body: bytes) -> tuple[str, ...] | None:
    """The model ids of a 200 answer, in its order; None when the list is only a first page.

    A paged answer (a ``nextToken``) is not the whole catalogue: routing by it could turn
    away a model the account has, so it counts as unknown (every model is tried).

    Raises:
        ModelCatalogueError: not a JSON object with a ``models`` list of objects with a string
            ``modelId``.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise ModelCatalogueError("models answer is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise ModelCatalogueError("models answer has no models list")
    models = document["models"]
    if len(models) > _MAX_MODELS:
        raise ModelCatalogueError("models answer lists too many models")
    ids: list[str] = []
    for entry in models:
        model_id = entry.get("modelId") if isinstance(entry, dict) else None
        if not isinstance(model_id, str) or not 0 < len(model_id) <= _MAX_ID_LENGTH:
            raise ModelCatalogueError("a model of the answer has no modelId")
        if model_id not in ids:
            ids.append(model_id)
    if document.get("nextToken"):
        return None
    return tuple(ids)

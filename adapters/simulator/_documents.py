"""The JSON documents the simulator answers besides the stream: usage, models, web search.

Field names follow the real answers (docs/kiro-protocol.md: Usage limits, Model catalogue,
Web search through MCP); the values are illustrative. Pure: the caller passes the time and
counters.
"""

from __future__ import annotations

import calendar
import datetime
import json
from urllib.parse import quote

from kiro_protocol import KIRO_MODELS

__all__ = [
    "usage_document",
    "models_document",
    "offers",
    "web_search_text",
    "CREDIT_LIMIT",
    "FREE_TRIAL_LIMIT",
    "PAID_TIER",
    "FREE_TIER",
]

#: The monthly credits of a simulated account, and its active free trial on top.
CREDIT_LIMIT = 50.0
FREE_TRIAL_LIMIT = 500.0
_MAX_OUTPUT_TOKENS = 64_000


def _next_month(now: float) -> float:
    day = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


#: The two simulated tiers: (subscriptionTitle, type). Only the paid one offers Opus, as at Kiro.
PAID_TIER = ("KIRO PRO", "Q_DEVELOPER_STANDALONE_PRO")
FREE_TIER = ("KIRO FREE", "Q_DEVELOPER_STANDALONE_FREE")


def offers(model_id: str, *, free_tier: bool) -> bool:
    """Whether a simulated account of that tier may use ``model_id`` (the free tier has no Opus)."""
    return not (free_tier and "opus" in model_id.lower())


def usage_document(
    account: str, *, used: int, now: float, with_email: bool, exhausted: bool, free_tier: bool = False
) -> dict[str, object]:
    """The ``getUsageLimits`` answer for ``account`` after ``used`` calls (``exhausted``: none left)."""
    limit = CREDIT_LIMIT
    spent = limit if exhausted else float(min(used, limit))
    trial = 0.0 if exhausted else FREE_TRIAL_LIMIT
    reset = _next_month(now)
    user: dict[str, object] = {"userId": account}
    if with_email:
        user["email"] = "simulator@example.com"
    return {
        "daysUntilReset": max(0, int((reset - now) // 86400)),
        "nextDateReset": reset,
        "userInfo": user,
        "subscriptionInfo": {
            "subscriptionTitle": (FREE_TIER if free_tier else PAID_TIER)[0],
            "type": (FREE_TIER if free_tier else PAID_TIER)[1],
            "overageCapability": "OVERAGE_INCAPABLE",
            "upgradeCapability": "UPGRADE_CAPABLE",
            "subscriptionManagementTarget": "PURCHASE",
        },
        "overageConfiguration": {"overageStatus": "DISABLED"},
        "usageBreakdownList": [
            {
                "resourceType": "CREDIT",
                "displayName": "Credit",
                "displayNamePlural": "Credits",
                "unit": "INVOCATIONS",
                "currency": "USD",
                "usageLimit": int(limit),
                "usageLimitWithPrecision": limit,
                "currentUsage": int(spent),
                "currentUsageWithPrecision": spent,
                "overageCap": 0,
                "overageCapWithPrecision": 0.0,
                "overageRate": 0.0,
                "overageCharges": 0.0,
                "currentOverages": 0,
                "currentOveragesWithPrecision": 0.0,
                "nextDateReset": reset,
                "freeTrialInfo": {
                    "freeTrialStatus": "ACTIVE" if trial else "EXPIRED",
                    "freeTrialExpiry": reset + 14 * 86400.0,
                    "usageLimit": int(trial),
                    "usageLimitWithPrecision": trial,
                    "currentUsage": 0,
                    "currentUsageWithPrecision": 0.0,
                },
                "bonuses": [],
            }
        ],
        "limits": [],
        "usageBreakdown": None,
    }


def _model_entry(model_id: str, name: str, window: int, multiplier: float) -> dict[str, object]:
    return {
        "modelId": model_id,
        "modelName": name,
        "description": f"{name} (simulated)",
        "rateMultiplier": multiplier,
        "rateUnit": "Credit",
        "supportedInputTypes": ["TEXT", "IMAGE"],
        "tokenLimits": {"maxInputTokens": window, "maxOutputTokens": _MAX_OUTPUT_TOKENS},
        "promptCaching": {
            "supportsPromptCaching": True,
            "maximumCacheCheckpointsPerRequest": 4,
            "minimumTokensPerCacheCheckpoint": 1024,
        },
    }


def models_document(*, free_tier: bool = False) -> dict[str, object]:
    """The ``ListAvailableModels`` answer: ``auto`` and every model of the core's table that the
    tier offers."""
    models = [_model_entry("auto", "Auto", 200_000, 1.0)]
    for m in KIRO_MODELS:
        if not offers(m.kiro_id, free_tier=free_tier):
            continue
        multiplier = 2.2 if m.family == "opus" else 0.4 if m.family == "haiku" else 1.3
        models.append(_model_entry(m.kiro_id, m.display_name, m.context_window, multiplier))
    return {"models": models, "defaultModel": models[0], "nextToken": None}


def web_search_text(query: str, now: float = 0.0) -> str:
    """``result.content[0].text`` of an MCP ``web_search`` call: JSON with three scripted results
    derived from the query (title and snippet quote it, the URL carries its words), in Kiro's
    fields (``publishedDate`` in milliseconds, a day apart before ``now``; ``domain``)."""
    quoted = " ".join(query.split())[:60]
    slug = quote("-".join(quoted.lower().split())[:60], safe="-")
    results = [
        {
            "title": f"{quoted} — result {i} (simulated)",
            "url": f"https://example.com/search/{slug}/{i}",
            "snippet": f'A scripted search result {i} for "{quoted}" from the kiro2api simulator.',
            "publishedDate": int((now - 86400 * i) * 1000),
            "domain": "example.com",
        }
        for i in (1, 2, 3)
    ]
    return json.dumps({"results": results, "totalResults": len(results), "query": query}, ensure_ascii=False)

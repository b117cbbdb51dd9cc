"""The admin face of a service: the admin token, the ``AdminConsole`` and the dashboard's door,
built from the settings when ``KIRO_ADMIN_TOKEN`` is set (docs/admin.md).

Synchronous (the console and the stores are); the service runs ``api`` and ``dashboard`` in a
worker thread.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from kiro_protocol import AdminCall, DashboardDoor, Reply

from .account_registry import AccountRegistry
from .admin_api import admin_api_reply
from .admin_console import AdminConsole
from .dashboard import dashboard_reply
from .settings import Settings
from .stores import StateStore

__all__ = ["AdminFace", "open_admin"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminFace:
    """What a service needs to answer ``/admin``."""

    #: ``KIRO_ADMIN_TOKEN``: ``App`` hands it to the front door.
    token: str
    console: AdminConsole
    door: DashboardDoor

    @property
    def registry(self) -> AccountRegistry:
        return self.console.registry

    def api(self, call: AdminCall, body: bytes, address: str | None) -> Reply:
        return admin_api_reply(self.console, call, body, address=address)

    def dashboard(self, call: AdminCall, headers: Sequence[tuple[str, str]], body: bytes, address: str | None) -> Reply:
        return dashboard_reply(self.console, self.door, call, headers, body, address=address,
                               nonce_hex=secrets.token_hex(16))


def open_admin(settings: Settings, registry: AccountRegistry, store: StateStore) -> AdminFace | None:
    """The admin face for ``settings``; None without an admin token."""
    if not settings.admin_token:
        return None
    return AdminFace(
        token=settings.admin_token,
        console=AdminConsole(registry=registry, store=store),
        door=DashboardDoor(settings.admin_token, secure=settings.tls_enabled),
    )

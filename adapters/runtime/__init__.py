"""IO shared by every adapter: settings, the upstream client, state stores, the drivers."""

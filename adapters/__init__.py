"""IO adapters for kiro_protocol: ``asgi``, ``wsgi_gevent``, ``anyio_server``, and the shared
``runtime`` (settings, upstream client, state stores) they all use."""

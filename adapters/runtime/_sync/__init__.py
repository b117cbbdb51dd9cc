"""The synchronous runtime, generated from the async modules by ``scripts/unasync.py``.

Do not edit the generated modules (every one but ``_anyio.py``): edit the async source and rerun
the script; ``tests/runtime/test_wsgi_unasync.py`` fails when they are stale. Used by the gevent WSGI adapter.
"""

"""The ASGI adapter (to mount in Starlette/FastAPI or run under uvicorn/hypercorn)."""

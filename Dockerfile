# kiro2api: the standalone server (kiro2api serve) in a slim image, run as a non-root user.
#
#   docker build -t kiro2api .
#   docker run -p 8080:8080 -v kiro2api-data:/data \
#     -v ./secrets:/run/secrets:ro \
#     -e KIRO_CLIENT_TOKEN_FILE=/run/secrets/kiro_client_token \
#     -e KIRO_AUTH_TOKEN_FILE=/run/secrets/kiro_auth_token \
#     -e KIRO_ADMIN_TOKEN_FILE=/run/secrets/kiro_admin_token kiro2api
#
# Secrets come in as files (the *_FILE settings), never as build arguments or baked-in values;
# compose.yml shows two replicas sharing one Redis. See docs/deployment.md.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kiro_protocol ./kiro_protocol
COPY adapters ./adapters
# Wheels of kiro2api and its server-side dependencies only (no test or dev tools).
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[server,fast,redis,images]"

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels "kiro2api[server,fast,redis,images]" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home kiro2api \
    && mkdir -p /data && chown kiro2api:kiro2api /data
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    KIRO_STATE=sqlite:////data/kiro2api-state.db \
    LOG_FORMAT=json
WORKDIR /data
VOLUME ["/data"]
USER kiro2api
EXPOSE 8080
# /health answers 200 while an account can serve, 503 while shutting down or without a store.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-m", "adapters.healthcheck"]
CMD ["kiro2api", "serve"]

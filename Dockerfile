# edge-gateway container image. Build: docker build -t edge-gateway .
# Run:  docker run -v /srv/edge/config:/etc/edge-gateway:ro -v edge-state:/var/lib/edge-gateway \
#         -p 8080:8080 edge-gateway

# --- build stage: wheels for the project and its dependencies --------------------------
FROM python:3.11-slim-bookworm AS build
# A C compiler for the detection models, which mypyc compiles (setup.py): about twice as fast.
# Unpinned on purpose: a throwaway build stage, and bookworm's security updates replace libc6-dev.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY edge ./edge
COPY cloud_sync ./cloud_sync
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime stage: no compilers, no sources, a non-root user ---------------------------
FROM python:3.11-slim-bookworm
ARG UID=10001
RUN groupadd --system --gid "${UID}" edge \
    && useradd --system --uid "${UID}" --gid "${UID}" --home-dir /var/lib/edge-gateway --shell /usr/sbin/nologin edge \
    && mkdir -p /etc/edge-gateway /var/lib/edge-gateway \
    && chown edge:edge /var/lib/edge-gateway \
    && chmod 0700 /var/lib/edge-gateway
COPY --from=build /wheels /wheels
# Exactly the wheels built above (the project and its pinned-by-build dependencies).
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels
COPY config/edge.example.yaml /usr/share/edge-gateway/edge.example.yaml

ENV PYTHONUNBUFFERED=1 \
    EDGE_BUFFER__PATH=/var/lib/edge-gateway/buffer.sqlite \
    EDGE_HTTP__HOST=0.0.0.0
VOLUME ["/etc/edge-gateway", "/var/lib/edge-gateway"]
WORKDIR /var/lib/edge-gateway
USER ${UID}:${UID}
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
# SIGTERM: commit in-flight messages, last sync, exit 0 (gateway.shutdown_timeout_s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["edge-gateway"]
CMD ["run", "--config", "/etc/edge-gateway/edge.yaml"]

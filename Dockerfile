# Loa: a slim image, non-root, uvloop (a dependency of the package). Build: docker build -t loa .
# The build stage makes the wheel (with config/ inside it as package data) and installs it,
# then runs on the installed Loa the commands tests/service/test_wheel.py runs on the same wheel.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# hiredis and uvloop ship wheels for linux/amd64 and arm64: no compiler in the image
COPY pyproject.toml setup.py README.md ./
COPY dispatcher ./dispatcher
COPY adapters ./adapters
COPY bench ./bench
COPY config ./config
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/loa && /opt/loa/bin/pip install /wheels/loa-*.whl \
    && /opt/loa/bin/python -c "import uvloop"
WORKDIR /smoke
RUN PATH=/opt/loa/bin:$PATH \
    && loa plan show --json > /dev/null \
    && loa plan level --cases 3 --json \
    && loa number 0912345678 --json \
    && loa config init loa.toml

FROM python:3.11-slim
# logs: one JSON object per line on stderr, for the container's log collector
ENV PATH=/opt/loa/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LOA_LOG_FORMAT=json
# espeak-ng: the loudspeaker channel reads its bulletins aloud with it (Vietnamese voice)
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 loa \
    && useradd --system --uid 10001 --gid loa --home-dir /var/lib/loa --create-home loa \
    && mkdir -p /etc/loa && chown loa:loa /var/lib/loa
COPY --from=build /opt/loa /opt/loa
USER loa
WORKDIR /var/lib/loa
# 8080: the API with /healthz and /metrics; 2775 and 8700: the simulators (loa sim smsc|zalo)
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["loa"]
# /etc/loa/loa.toml: a deployment file (`loa config init`; docker-compose.yml mounts one)
CMD ["run", "--config", "/etc/loa/loa.toml"]

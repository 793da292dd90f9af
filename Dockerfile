# Loa: a slim image, non-root, uvloop (a dependency of the package). Build: docker build -t loa .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# hiredis and uvloop ship wheels for linux/amd64 and arm64: no compiler in the image
COPY pyproject.toml README.md ./
COPY dispatcher ./dispatcher
COPY adapters ./adapters
RUN python -m venv /opt/loa && /opt/loa/bin/pip install . && /opt/loa/bin/python -c "import uvloop"

FROM python:3.11-slim
ENV PATH=/opt/loa/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
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
CMD ["run", "--config", "/etc/loa/loa.toml"]

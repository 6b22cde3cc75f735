# photosorter add-on image. The Supervisor no longer passes BUILD_FROM (build.yaml is deprecated),
# so the base is declared here: Debian, because onnxruntime publishes no musl (Alpine) wheels.
# trixie (Debian 13) ships Python 3.13; photosorter runs on any Python from 3.11 (the tests run on 3.11,
# and the lock holds wheels for both).
ARG BUILD_FROM=ghcr.io/home-assistant/base-debian:trixie
FROM ${BUILD_FROM}

ARG BUILD_ARCH=amd64
ARG BUILD_VERSION=0.1.0

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

# Runtime only: the lock (requirements/runtime.txt, made by requirements/lock.sh for every Python from
# 3.11 and both arches) holds no torch, transformers or optimum (those are the `export` extra, for
# building models on a workstation). tests/test_addon_image.py builds this same virtualenv from the same file.
COPY requirements/runtime.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY pyproject.toml README.md /tmp/src/
COPY photosorter /tmp/src/photosorter
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/src && rm -rf /tmp/src

COPY addon/rootfs /

ENV PATH="/opt/venv/bin:${PATH}" PYTHONUNBUFFERED=1

# The daemon touches /data/heartbeat every loop (at least every 30 s).
HEALTHCHECK --interval=60s --timeout=10s --start-period=300s --retries=3 \
    CMD ["/opt/venv/bin/python", "-m", "photosorter", "health", "--data", "/data"]

LABEL io.hass.version="${BUILD_VERSION}" io.hass.type="app" io.hass.arch="${BUILD_ARCH}" \
    org.opencontainers.image.title="photosorter" \
    org.opencontainers.image.description="Sort an iCloud photo library by category on the CPU" \
    org.opencontainers.image.licenses="MIT"

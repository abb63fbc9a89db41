# syntax=docker/dockerfile:1
# k8sgw container image: docker build -t k8sgw .
#
# build:   a wheel of k8sgw (with its C module, _mmsg: the full python image has gcc), installed
#          with its dependencies into the venv /opt/k8sgw
# runtime: python:3.11-slim plus that venv; no compilers, no pip cache, numeric non-root user
# dev:     runtime whose k8sgw package the user may overwrite (Tilt's live_update syncs into it)
# release: the default target, what `docker build` without --target produces

FROM python:3.11 AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY k8sgw ./k8sgw
RUN python -m venv /opt/k8sgw \
    && pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/k8sgw/bin/pip install /wheels/k8sgw-*.whl \
    && /opt/k8sgw/bin/k8sgw -version \
    && /opt/k8sgw/bin/python -c 'import k8sgw.dnsserver._mmsg'

FROM python:3.11-slim AS runtime
ENV PATH=/opt/k8sgw/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/k8sgw /opt/k8sgw
# 65532 is the "nonroot" user of distroless images; Kubernetes' runAsNonRoot needs it numeric.
USER 65532:65532
WORKDIR /tmp
# DNS (unprivileged, the Service maps 53 to it), then health, ready and metrics.
EXPOSE 1053/udp 1053/tcp 8080 8181 9153
ENTRYPOINT ["k8sgw"]
CMD ["-conf", "/etc/k8sgw/Corefile"]

FROM runtime AS dev
USER 0
RUN chown -R 65532:65532 /opt/k8sgw/lib/python3.11/site-packages/k8sgw
USER 65532:65532

FROM runtime AS release

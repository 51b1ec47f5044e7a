# pdorgsync: `docker build -t pdorgsync:0.1.0 .`, then see deploy/kubernetes/.
# Two stages: wheels are built with the build tools in the first; the final image
# gets only the installed virtual environment (no compiler, no pip cache), runs
# as an unprivileged user and starts `pdorgsync serve`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/pdorgsync
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# psycopg[binary] ships libpq in its wheel: the runtime image needs no libpq package.
RUN /opt/pdorgsync/bin/pip install --upgrade pip \
    && /opt/pdorgsync/bin/pip install . \
    && /opt/pdorgsync/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="pdorgsync" \
      org.opencontainers.image.description="PagerDuty org sync, coverage audit and auto-engagement daemon" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 pdorgsync \
    && useradd --system --uid 10001 --gid pdorgsync --home-dir /var/lib/pdorgsync \
       --create-home --shell /usr/sbin/nologin pdorgsync
COPY --from=build /opt/pdorgsync /opt/pdorgsync
ENV PATH=/opt/pdorgsync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PDORGSYNC_LISTEN=0.0.0.0:8080 \
    PDORGSYNC_LOG_FORMAT=json \
    PDORGSYNC_ORG_FILE=/etc/pdorgsync/org/org.yaml \
    PDORGSYNC_POLICY_DIR=/etc/pdorgsync/policies \
    PDORGSYNC_STATE_PATH=/var/lib/pdorgsync/pdorgsync.db
USER 10001:10001
WORKDIR /var/lib/pdorgsync
EXPOSE 8080
# SIGTERM stops it within 10 s (requests finished, claimed work handed back).
STOPSIGNAL SIGTERM
ENTRYPOINT ["pdorgsync", "serve"]

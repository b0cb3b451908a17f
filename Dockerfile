# The Smart Approval image: docker-compose.yml runs web, worker, beat and the migration from it.

# The browser files of the diagram viewer (bpmn-js), installed from package-lock.json and copied
# into web/static/vendor by `npm ci` (scripts/copy-vendor.mjs): the pages never load a CDN.
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
COPY scripts/copy-vendor.mjs ./scripts/
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml ./
COPY engine ./engine
COPY web ./web
COPY --from=assets /build/web/static/vendor ./web/static/vendor
RUN pip install .

# Bundles are data: deployed into the database by `approval deploy processes`.
COPY processes ./processes
COPY forms ./forms

RUN useradd --system --create-home approval \
    && mkdir -p /app/instance \
    && chown approval /app/instance
USER approval
ENV APPROVAL_INSTANCE_DIR=/app/instance \
    APPROVAL_PROCESSES_DIR=/app/processes \
    APPROVAL_FORMS_DIR=/app/forms

EXPOSE 8000
CMD ["approval", "web"]

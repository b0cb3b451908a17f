# The Smart Approval image: docker-compose.yml runs web, worker, beat and the migration from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml ./
COPY engine ./engine
COPY web ./web
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

# One image for every portalflow process: migrate, worker (and later scheduler, web).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
 && useradd --create-home --uid 10001 portalflow \
 && mkdir -p /app/var && chown portalflow /app/var

USER portalflow
ENTRYPOINT ["portalflow"]
CMD ["--help"]

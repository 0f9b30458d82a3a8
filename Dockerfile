# One image for every portalflow process: migrate, worker, scheduler, web, one-off commands.
FROM python:3.11.7-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, from exact pins, in a layer of their own: a change to the source
# alone rebuilds only the small layer below. Refresh constraints.txt as its header says.
COPY constraints.txt ./
RUN pip install -r constraints.txt

COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps . \
 && pip check \
 && useradd --create-home --uid 10001 portalflow \
 && mkdir -p /app/var && chown portalflow /app/var

USER portalflow
# Checks what PID 1 runs (`portalflow healthcheck --help`): a worker's processes beat in
# Redis, the scheduler keeps its schedule, the web app answers /healthz; others: nothing.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["portalflow", "healthcheck"]
ENTRYPOINT ["portalflow"]
CMD ["--help"]

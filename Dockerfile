# The printsync image: one process per container (api or worker), configured by environment.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY workers ./workers
COPY storage ./storage
COPY metrics ./metrics
COPY printsync ./printsync
RUN pip install --no-cache-dir . && useradd --system --home /app printsync
USER printsync
ENV PRINTSYNC_ENVIRONMENT=production
EXPOSE 8000
CMD ["printsync", "serve", "--host", "0.0.0.0", "--port", "8000"]

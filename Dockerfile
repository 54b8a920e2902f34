# payguard's operator image: slim, non-root, read-only friendly. Not built in this repository's CI
# (its machines have no Docker engine); build it where you have one: `docker build -t payguard:0.1.0 .`
# Pin the base by digest in your registry mirror for reproducible builds.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11.11-slim-bookworm
COPY --from=build /install /usr/local
# 65532: the conventional "nonroot" user; the chart also runs with readOnlyRootFilesystem.
USER 65532:65532
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["payguard"]
CMD ["run"]

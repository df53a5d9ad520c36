# tollgate: a small runtime image (Debian 12, the same library versions as the build).
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libevent-dev libhiredis-dev libjansson-dev libjwt-dev \
      libpq-dev libssl-dev libcmocka-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY proxy proxy
COPY schema schema
COPY tests tests
COPY dashboard-static dashboard-static
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release && cmake --build /build -j"$(nproc)" --target tollgate fake_upstream

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7 libhiredis0.14 libjansson4 \
      libjwt0 libpq5 libssl3 ca-certificates tzdata curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/tollgate --create-home tollgate
COPY --from=build /build/proxy/tollgate /usr/local/bin/tollgate
COPY --from=build /build/tests/fake_upstream/fake_upstream /usr/local/bin/fake_upstream
COPY schema /usr/share/tollgate/schema
COPY dashboard-static /usr/share/tollgate/dashboard
ENV TOLLGATE_SCHEMA_DIR=/usr/share/tollgate/schema \
    DASHBOARD_DIR=/usr/share/tollgate/dashboard \
    LEDGER_SPOOL_DIR=/var/lib/tollgate/spool \
    TOLLGATE_LISTEN=0.0.0.0:8080
USER tollgate
VOLUME /var/lib/tollgate
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/tollgate"]

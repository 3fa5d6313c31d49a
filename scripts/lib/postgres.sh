# Starts a throwaway PostgreSQL server for the tests and exports LABBOARD_TEST_DATABASE_URL, a
# URL of its `postgres` database on which the tests create a database each. Sourced by
# scripts/test; the server is stopped and its directory removed when the sourcing shell exits.
#
# PostgreSQL comes from Debian's packages (`postgresql`), installed when missing. The server runs
# as an unprivileged user in a temporary directory, listens on a Unix socket there and on no TCP
# port, trusts local connections (nothing else can reach it), and does not fsync: what the tests
# check is the order of Labboard's writes and acknowledgements, not the disk's.
#
# PG_FSYNC=on makes it durable as a production server is (fsync and synchronous commits, the
# PostgreSQL defaults), for the benchmarks; PG_TEST_DIR/data is then its data directory.

postgres_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres() {
  if [ -z "$(postgres_bin)" ]; then
    echo "installing postgresql from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  case "${PG_FSYNC:-off}" in
    on | off) ;;
    *) echo "PG_FSYNC must be on or off, not ${PG_FSYNC}" >&2; return 1 ;;
  esac
  local bin
  bin="$(postgres_bin)"
  PG_TEST_DIR="$(mktemp -d "${TMPDIR:-/tmp}/labboard-pg.XXXXXX")"
  local as=()
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root; the package made this user.
    chown postgres: "$PG_TEST_DIR"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$PG_TEST_DIR/data" -U labboard -A trust --no-sync -E UTF8 \
    >"$PG_TEST_DIR/initdb.log" 2>&1 || { cat "$PG_TEST_DIR/initdb.log" >&2; return 1; }
  "${as[@]}" "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -s \
    -o "-k $PG_TEST_DIR -c listen_addresses= -c fsync=${PG_FSYNC:-off} -c max_connections=400" start \
    || { cat "$PG_TEST_DIR/server.log" >&2; return 1; }
  PG_TEST_STOP=("${as[@]}" "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w -s stop)
  trap stop_postgres EXIT
  export LABBOARD_TEST_DATABASE_URL="postgres://labboard@/postgres?host=$PG_TEST_DIR"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') (fsync ${PG_FSYNC:-off}) in $PG_TEST_DIR" >&2
}

stop_postgres() {
  if [ -n "${PG_TEST_DIR:-}" ]; then
    "${PG_TEST_STOP[@]}" || true
    rm -rf "$PG_TEST_DIR"
    PG_TEST_DIR=
  fi
}

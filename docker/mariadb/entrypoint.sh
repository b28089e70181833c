#!/bin/bash
# Initialises the data directory on first start, then execs mariadbd as the mysql user.
set -euo pipefail
DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
if [ "${1:-mariadbd}" != mariadbd ]; then exec "$@"; fi
shift || true
mkdir -p "$DATADIR" /run/mysqld
chown mysql:mysql "$DATADIR" /run/mysqld
sql_str() { printf "'%s'" "$(printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g")"; }
sql_id() { printf '`%s`' "$(printf '%s' "$1" | sed 's/`/``/g')"; }
if [ ! -d "$DATADIR/mysql" ]; then
  [ -n "${MARIADB_ROOT_PASSWORD:-}" ] || { echo "entrypoint: MARIADB_ROOT_PASSWORD is required" >&2; exit 1; }
  if [ -n "${MARIADB_USER:-}" ] && [ -z "${MARIADB_PASSWORD:-}" ]; then
    echo "entrypoint: MARIADB_PASSWORD is required with MARIADB_USER" >&2; exit 1
  fi
  mariadb-install-db --user=mysql --datadir="$DATADIR" --auth-root-authentication-method=normal \
    --skip-test-db >/dev/null
  # Socket-only temporary server for the users and database.
  # Its output goes to a file so that "ready for connections" appears once per start.
  mariadbd --user=mysql --datadir="$DATADIR" --socket="$SOCKET" --skip-networking >/tmp/mariadb-init.log 2>&1 &
  pid=$!
  up=0
  for _ in $(seq 1 120); do
    if mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if [ "$up" != 1 ]; then
    echo "entrypoint: the temporary server did not come up; its output:" >&2
    cat /tmp/mariadb-init.log >&2; exit 1
  fi
  {
    # Keep only root@localhost (the install also makes password-less root@127.0.0.1,
    # root@::1 and root@<hostname>); root@'%' replaces them below.
    echo "DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host<>'localhost');"
    echo "DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '');"
    echo "FLUSH PRIVILEGES;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_str "$MARIADB_ROOT_PASSWORD");"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_str "$MARIADB_ROOT_PASSWORD");"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS $(sql_id "$MARIADB_DATABASE");"
    fi
    if [ -n "${MARIADB_USER:-}" ]; then
      echo "CREATE USER $(sql_str "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_str "$MARIADB_PASSWORD");"
      if [ -n "${MARIADB_DATABASE:-}" ]; then
        echo "GRANT ALL ON $(sql_id "$MARIADB_DATABASE").* TO $(sql_str "$MARIADB_USER")@'%';"
      fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$SOCKET" -uroot --binary-mode
  kill "$pid"; wait "$pid" || true
  echo "entrypoint: initialised $DATADIR (database ${MARIADB_DATABASE:-none}, user ${MARIADB_USER:-none})"
fi
exec mariadbd --user=mysql "$@"

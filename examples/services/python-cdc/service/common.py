"""Shared helpers of the python-cdc service: environment, logging, signals and the
database connections. Standard library plus Debian bookworm's python3-psycopg2 and
python3-pymysql (each imported only by the process that needs it)."""

import os
import signal
import sys
import threading
import time
import traceback
from urllib.parse import unquote, urlsplit

PROCESS = os.environ.get("CHAOSBANK_PROCESS") or os.path.splitext(os.path.basename(sys.argv[0]))[0]

# CDC_BROKEN=no-dedup: the consumer credits every message it gets, without the dedup
# table (the deliberately wrong variant, see broken.toml).
BROKEN = os.environ.get("CDC_BROKEN", "").strip()

# Set by SIGTERM / SIGINT; every loop of every process watches it.
STOP = threading.Event()

_log_lock = threading.Lock()


def log(msg):
    """One line on stdout: UTC time, the process's name, the message."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % int(now % 1 * 1000)
    line = "%s %s: %s\n" % (stamp, PROCESS, msg)
    with _log_lock:
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass


class Throttle:
    """Logs a recurring message (an outage's retries) at most once every `every` seconds,
    counting the ones it held back."""

    def __init__(self, every=5.0):
        self.every = every
        self.last = {}
        self.held = {}
        self.lock = threading.Lock()

    def log(self, key, msg):
        now = time.monotonic()
        with self.lock:
            last = self.last.get(key)
            if last is not None and now - last < self.every:
                self.held[key] = self.held.get(key, 0) + 1
                return
            held = self.held.pop(key, 0)
            self.last[key] = now
        log(msg + (" (%d similar held back)" % held if held else ""))

    def clear(self, key):
        with self.lock:
            self.last.pop(key, None)
            self.held.pop(key, None)


def _on_signal(signum, _frame):
    if not STOP.is_set():
        log("received %s, stopping" % signal.Signals(signum).name)
    STOP.set()


# Installed on import (from the main thread): SIGTERM/SIGINT only set STOP, and `run`
# turns that into a prompt exit with status 0.
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def env(name):
    value = os.environ.get(name)
    if not value:
        log("missing environment variable %s; waiting for SIGTERM" % name)
        # A process may exit only when asked to: wait for the stop instead.
        while not STOP.wait(1.0):
            pass
        sys.exit(0)
    return value


def parse_url(url):
    """postgres://USER:PASSWORD@HOST:PORT/DB or mysql://… → dict of the parts."""
    u = urlsplit(url)
    return {
        "host": u.hostname or "localhost",
        "port": u.port,
        "user": unquote(u.username or ""),
        "password": unquote(u.password or ""),
        "db": unquote(u.path.lstrip("/")),
    }


def pg_connect(url, statement_timeout_ms=5000):
    """A PostgreSQL connection (not autocommit) that fails fast instead of hanging: a 3 s
    connect timeout, a server-side statement timeout, TCP keepalives and a TCP user
    timeout so that a partitioned peer is noticed within ~10 s."""
    import psycopg2

    p = parse_url(url)
    return psycopg2.connect(
        host=p["host"],
        port=p["port"] or 5432,
        user=p["user"],
        password=p["password"],
        dbname=p["db"],
        connect_timeout=3,
        keepalives=1,
        keepalives_idle=5,
        keepalives_interval=2,
        keepalives_count=3,
        tcp_user_timeout=10000,
        application_name="python-cdc-%s" % PROCESS,
        options="-c statement_timeout=%d -c idle_in_transaction_session_timeout=30000"
        % statement_timeout_ms,
    )


def mysql_connect(url):
    """A MariaDB connection, autocommit off, 3 s connect and 10 s read/write timeouts.
    FOUND_ROWS makes an UPDATE's row count the rows matched, not the rows changed.

    The session waits at most 5 s for a row lock (the server's default is 50 s), less
    than the read timeout, so a blocked statement fails with an error instead of being
    abandoned by its client while it still waits: an abandoned session takes the lock
    once it frees and holds it until the server notices its client is gone, and the next
    attempt, blocked behind it, is abandoned in turn — a convoy that kept a consumer
    retrying one message for minutes after a partition of bank B healed. A transaction
    left idle for 20 s (its client cut off mid-transaction) is rolled back by the
    server, so its locks do not outlive it."""
    import pymysql
    from pymysql.constants import CLIENT

    p = parse_url(url)
    conn = pymysql.connect(
        host=p["host"],
        port=p["port"] or 3306,
        user=p["user"],
        password=p["password"],
        database=p["db"],
        connect_timeout=3,
        read_timeout=10,
        write_timeout=10,
        autocommit=False,
        charset="utf8mb4",
        client_flag=CLIENT.FOUND_ROWS,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 5, "
                        "SESSION idle_transaction_timeout = 20")
    except Exception:
        conn.close()
        raise
    return conn


# The service's own table in bank A, in the shape Debezium's Outbox Event Router reads
# (connect/outbox.json maps its columns). Insert-only: nothing marks a row sent, Debezium
# reads the inserts from the write-ahead log. The primary key on id (the transfer id) is
# what makes a retried POST idempotent (and serialises two concurrent requests with the
# same id). REPLICA IDENTITY is left at its default: only inserts are read.
OUTBOX_DDL = [
    """CREATE TABLE IF NOT EXISTS outbox (
           id VARCHAR(64) PRIMARY KEY,
           aggregatetype VARCHAR(64) NOT NULL,
           aggregateid VARCHAR(64) NOT NULL,
           type VARCHAR(64) NOT NULL,
           payload TEXT NOT NULL,
           created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
]


def ensure_outbox(conn):
    """Creates the outbox table in bank A (idempotent; the api runs it at start, before it
    answers its health check, so the table exists when chaosbank registers the
    connector)."""
    with conn.cursor() as cur:
        for ddl in OUTBOX_DDL:
            cur.execute(ddl)
    conn.commit()


def close_quietly(conn):
    if conn is None:
        return
    try:
        conn.close()
    except Exception:
        pass


def sleep(seconds):
    """Sleeps, waking at once on a stop. Returns True if the process should stop."""
    return STOP.wait(seconds)


def describe(exc):
    text = str(exc).strip().replace("\n", " ")
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


def run(worker, grace=1.5):
    """Runs `worker()` (a loop that returns once STOP is set) in a thread of its own and
    keeps the main thread free for the signals: a worker blocked in a database or broker
    call cannot delay the exit. On SIGTERM/SIGINT the worker gets `grace` seconds to
    finish, then the process exits 0 regardless. A worker that dies of an unexpected
    error is logged and started again: the process never exits on its own."""

    def body():
        try:
            worker()
        except BaseException as exc:  # noqa: BLE001 — a crash here is logged, not fatal
            if not STOP.is_set():
                log("worker died: %s\n%s" % (describe(exc), traceback.format_exc().rstrip()))

    while not STOP.is_set():
        t = threading.Thread(target=body, name="%s-worker" % PROCESS, daemon=True)
        t.start()
        while t.is_alive() and not STOP.wait(0.2):
            pass
        if STOP.is_set():
            t.join(grace)
            break
        log("restarting the worker in 1 s")
        STOP.wait(1.0)
    log("stopped")
    try:
        sys.stdout.flush()
    except Exception:
        pass
    # Daemon threads may still sit in a blocking library call: leave without waiting.
    os._exit(0)

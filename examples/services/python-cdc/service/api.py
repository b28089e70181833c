"""api: the transfer API of the python-cdc service (HTTP/1.1, JSON, on
0.0.0.0:$CHAOSBANK_PORT).

POST /transfers debits bank A and inserts the outbox row in ONE PostgreSQL transaction;
Debezium (the connector of connect/outbox.json, run by chaosbank's Kafka Connect worker)
reads the insert from the write-ahead log and publishes its payload, and the consumer
credits bank B. GET /health answers 200 once bank A answers and the outbox table exists.

Answers: 200 {"status":"accepted"} only after the commit returned; 409 {"status":
"rejected"} when the account cannot cover the amount (the transaction rolled back);
503 on any error or doubt (bank A down, the commit failed or timed out), which chaosbank
records as unknown. A transfer id seen before (a client retry) is answered 200 without a
second debit: the outbox's primary key on the transfer id makes the API idempotent.
"""

import json
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

import common
from common import Throttle, close_quietly, describe, ensure_outbox, log

BANK_A_URL = None
PORT = None
SCHEMA_READY = threading.Event()
THROTTLE = Throttle()
MAX_BODY = 64 * 1024


class TransferError(Exception):
    """A debit that failed; `committing` tells whether COMMIT had been sent (then the
    outcome is unknown, else nothing was applied)."""

    def __init__(self, cause, committing):
        super().__init__(describe(cause))
        self.committing = committing


_local = threading.local()


def connection():
    """This server thread's bank A connection, (re)connected on demand."""
    conn = getattr(_local, "conn", None)
    if conn is not None and not conn.closed:
        return conn, True
    conn = common.pg_connect(BANK_A_URL)
    _local.conn = conn
    if getattr(_local, "had_error", False):
        THROTTLE.log("reconnect", "reconnected to bank A")
        _local.had_error = False
    return conn, False


def drop_connection():
    close_quietly(getattr(_local, "conn", None))
    _local.conn = None
    _local.had_error = True


def transfer(tid, src, dst, amount):
    """Runs the debit. Returns "accepted", "rejected" or "duplicate"; raises
    TransferError on any error."""
    payload = json.dumps({"id": tid, "from": src, "to": dst, "amount": amount},
                         separators=(",", ":"))
    for attempt in (1, 2):
        reused = committing = False
        try:
            conn, reused = connection()
            with conn.cursor() as cur:
                # Claim the id first: a concurrent request with the same id waits here
                # until this transaction ends, then finds the row (or takes over).
                cur.execute(
                    "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
                    "VALUES (%s, 'transfer', %s, 'debited', %s) "
                    "ON CONFLICT (id) DO NOTHING RETURNING id",
                    (tid, tid, payload))
                if cur.fetchone() is None:
                    conn.rollback()
                    return "duplicate"
                cur.execute(
                    "UPDATE accounts SET balance = balance - %s WHERE id = %s AND balance >= %s",
                    (amount, src, amount))
                if cur.rowcount != 1:
                    conn.rollback()
                    return "rejected"
                cur.execute(
                    "INSERT INTO ledger (transfer_id, account, amount) VALUES (%s, %s, %s)",
                    (tid, src, -amount))
            committing = True
            conn.commit()
            return "accepted"
        except Exception as exc:
            drop_connection()
            # Before COMMIT nothing can have been applied: a connection that went stale
            # while idle (bank A restarted) is retried once on a fresh one.
            if not committing and reused and attempt == 1 and isinstance(
                    exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
                THROTTLE.log("stale", "bank A connection was stale (%s); retrying on a new one"
                             % describe(exc))
                continue
            raise TransferError(exc, committing) from exc
    raise AssertionError("unreachable")


def health():
    if not SCHEMA_READY.is_set():
        return False
    try:
        conn, _ = connection()
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        conn.rollback()
        return True
    except Exception as exc:
        drop_connection()
        THROTTLE.log("health", "health check: bank A unavailable: %s" % describe(exc))
        return False


def parse_transfer(body):
    """The request body → (id, from, to, amount), or a reason why it is malformed."""
    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, "body is not JSON"
    if not isinstance(req, dict):
        return None, "body is not a JSON object"
    tid, src, dst, amount = req.get("id"), req.get("from"), req.get("to"), req.get("amount")
    if not isinstance(tid, str) or not tid or len(tid) > 64:
        return None, "id must be a string of 1 to 64 characters"
    if not isinstance(src, str) or not src or len(src) > 32:
        return None, "from must be an account id"
    if not isinstance(dst, str) or not dst or len(dst) > 32:
        return None, "to must be an account id"
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return None, "amount must be a positive integer"
    return (tid, src, dst, amount), None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "python-cdc"
    # An idle keep-alive connection is closed after this long.
    timeout = 600

    def reply(self, code, obj):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        if self.path.split("?", 1)[0] != "/health":
            self.reply(404, {"status": "error", "reason": "not found"})
        elif health():
            self.reply(200, {"status": "ok"})
        else:
            self.reply(503, {"status": "unavailable"})

    def do_POST(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            self.reply(411, {"status": "error", "reason": "Content-Length required"})
            return
        length = int(length)
        if length > MAX_BODY:
            self.close_connection = True
            self.reply(413, {"status": "error", "reason": "body too large"})
            return
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return
        if self.path.split("?", 1)[0] != "/transfers":
            self.reply(404, {"status": "error", "reason": "not found"})
            return
        req, why = parse_transfer(body)
        if req is None:
            self.reply(400, {"status": "error", "reason": why})
            return
        if not SCHEMA_READY.is_set():
            self.reply(503, {"status": "unavailable", "reason": "starting"})
            return
        try:
            outcome = transfer(*req)
        except TransferError as exc:
            when = "at commit" if exc.committing else "before commit"
            THROTTLE.log("transfer", "transfer %s: bank A error %s, answered 503: %s"
                         % (req[0], when, exc))
            self.reply(503, {"status": "unknown", "reason": "bank A error"})
            return
        if outcome == "rejected":
            self.reply(409, {"status": "rejected", "reason": "insufficient funds"})
        else:  # accepted, or a retry of a transfer already accepted
            self.reply(200, {"status": "accepted"})

    def finish(self):
        try:
            super().finish()
        finally:
            # The connection's thread ends here: close its bank A connection with it.
            close_quietly(getattr(_local, "conn", None))
            _local.conn = None

    def log_message(self, format, *args):  # noqa: A002 — no line per request
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that reset or timed out its connection: one line, not a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            THROTTLE.log("client", "client connection %s:%d ended: %s"
                         % (client_address[0], client_address[1], describe(exc)))
        else:
            log("error serving %s:%d: %s\n%s" % (client_address[0], client_address[1],
                                                 describe(exc), traceback.format_exc().rstrip()))


def prepare_schema():
    """Creates the outbox table, retrying until bank A answers (or the stop)."""
    throttle = Throttle()
    while not common.STOP.is_set():
        conn = None
        try:
            conn = common.pg_connect(BANK_A_URL)
            ensure_outbox(conn)
            SCHEMA_READY.set()
            log("outbox table ready in bank A")
            return
        except Exception as exc:
            throttle.log("schema", "bank A not ready (%s); retrying" % describe(exc))
        finally:
            close_quietly(conn)
        common.sleep(0.5)


def main():
    global BANK_A_URL, PORT
    BANK_A_URL = common.env("CHAOSBANK_BANK_A_URL")
    PORT = int(common.env("CHAOSBANK_PORT"))
    server = None
    while server is None and not common.STOP.is_set():
        try:
            server = Server(("0.0.0.0", PORT), Handler)
        except OSError as exc:
            log("cannot listen on port %d (%s); retrying" % (PORT, describe(exc)))
            common.sleep(1.0)
    if server is None:
        return
    log("start: serving on 0.0.0.0:%d, bank A %s" % (PORT, common.parse_url(BANK_A_URL)["host"]))
    threading.Thread(target=prepare_schema, name="schema", daemon=True).start()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     name="http", daemon=True).start()
    common.STOP.wait()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    common.run(main)

"""relay: publishes bank A's outbox to Kafka.

Forever: read up to 200 unsent outbox rows in seq order, produce each to
$CHAOSBANK_TOPIC (key = transfer id, value = the JSON payload) with an idempotent
acks=all producer, wait for every delivery report, then mark only the acknowledged rows
sent. A row whose delivery failed stays unsent and goes out again in a later batch: the
relay may publish a transfer twice (the consumer deduplicates), never zero times.

OUTBOX_BROKEN=mark-before-ack turns that around on purpose: the rows are marked sent
and committed first, then produced without waiting for the acknowledgement, so a relay
killed with messages still queued, or a broker outage longer than its short message
timeout (1.5 s), loses transfers.
"""

import time

from confluent_kafka import KafkaException, Producer

import common
from common import Throttle, close_quietly, describe, ensure_outbox, log

BATCH = 200
IDLE_S = 0.05
# How long librdkafka keeps retrying a message before reporting it failed.
MESSAGE_TIMEOUT_MS = 10000
# The broken variant's fire-and-forget: a send not acknowledged within this is given up
# (its row is already marked sent), so any broker outage of a few seconds loses it.
BROKEN_MESSAGE_TIMEOUT_MS = 1500
PROGRESS_EVERY_S = 30.0


class Relay:
    def __init__(self):
        self.bank_a_url = common.env("CHAOSBANK_BANK_A_URL")
        self.bootstrap = common.env("CHAOSBANK_KAFKA_BOOTSTRAP")
        self.topic = common.env("CHAOSBANK_TOPIC")
        self.broken = common.BROKEN == "mark-before-ack"
        self.conn = None
        self.db_failed = False
        self.producer = None
        self.fatal = None
        self.throttle = Throttle()
        self.backoff = 0.2
        self.relayed = 0
        self.lost = 0
        self.reported = (0, 0)
        self.last_progress = time.monotonic()

    # -- bank A -------------------------------------------------------------------

    def db(self):
        if self.conn is None or self.conn.closed:
            conn = common.pg_connect(self.bank_a_url, statement_timeout_ms=10000)
            try:
                ensure_outbox(conn)
            except Exception:
                close_quietly(conn)
                raise
            self.conn = conn
            if self.db_failed:
                log("reconnected to bank A")
                self.db_failed = False
        return self.conn

    def db_error(self, what, exc):
        close_quietly(self.conn)
        self.conn = None
        self.db_failed = True
        self.throttle.log("db", "bank A error while %s: %s" % (what, describe(exc)))

    def fetch(self):
        conn = self.db()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT seq, transfer_id, payload FROM outbox WHERE sent = FALSE "
                "ORDER BY seq LIMIT %s", (BATCH,))
            rows = cur.fetchall()
        conn.commit()
        return rows

    def mark_sent(self, seqs):
        conn = self.db()
        with conn.cursor() as cur:
            cur.execute("UPDATE outbox SET sent = TRUE WHERE seq = ANY(%s)", (list(seqs),))
        conn.commit()

    # -- Kafka --------------------------------------------------------------------

    def on_error(self, err):
        if err.fatal():
            self.fatal = err
            log("fatal producer error: %s" % err)
        else:
            self.throttle.log("kafka", "kafka: %s" % err)

    def make_producer(self):
        self.producer = Producer({
            "bootstrap.servers": self.bootstrap,
            "client.id": "python-outbox-relay",
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": BROKEN_MESSAGE_TIMEOUT_MS if self.broken else MESSAGE_TIMEOUT_MS,
            "request.timeout.ms": 5000,
            "linger.ms": 5,
            "socket.keepalive.enable": True,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "error_cb": self.on_error,
            # librdkafka's own log lines (one per refused connection) stay quiet; its
            # errors reach on_error, which throttles them.
            "log_level": 2,
        })
        self.fatal = None

    def drop_producer(self, why):
        log("recreating the producer: %s" % why)
        producer, self.producer = self.producer, None
        if producer is not None:
            try:
                producer.purge(in_queue=True, in_flight=True, blocking=False)
                producer.poll(0)
            except Exception:
                pass
            del producer

    def produce(self, key, value, on_delivery):
        """Queues one message; False if librdkafka refused it outright."""
        while not common.STOP.is_set():
            try:
                self.producer.produce(self.topic, key=key, value=value, on_delivery=on_delivery)
                return True
            except BufferError:  # local queue full: serve reports, try again
                self.producer.poll(0.1)
            except KafkaException as exc:
                self.throttle.log("produce", "produce refused: %s" % describe(exc))
                return False
        return False

    # -- one batch ----------------------------------------------------------------

    def relay_batch(self, rows):
        """Correct order: produce, wait for every report, mark the acknowledged rows."""
        acked, failed, pending = [], [], [0]

        def report(seq):
            def on_delivery(err, _msg):
                pending[0] -= 1
                if err is None:
                    acked.append(seq)
                else:
                    failed.append(err)
            return on_delivery

        for seq, tid, payload in rows:
            pending[0] += 1
            if not self.produce(tid, payload, report(seq)):
                pending[0] -= 1
                failed.append("refused")
            if common.STOP.is_set():
                return
        deadline = time.monotonic() + MESSAGE_TIMEOUT_MS / 1000.0 + 5.0
        while pending[0] > 0 and self.fatal is None and time.monotonic() < deadline:
            self.producer.flush(0.2)
            if common.STOP.is_set():
                return  # nothing marked: every row of the batch goes out again later
        if pending[0] > 0:
            self.drop_producer("fatal error %s" % self.fatal if self.fatal is not None
                               else "%d delivery reports overdue" % pending[0])
        if acked:
            try:
                self.mark_sent(acked)
                self.relayed += len(acked)
            except Exception as exc:
                # Published but still unsent: published again later (a duplicate the
                # consumer drops), never lost.
                self.db_error("marking %d rows sent" % len(acked), exc)
        if failed:
            self.throttle.log("delivery", "%d of %d deliveries failed (first: %s); they stay "
                              "unsent and are retried" % (len(failed), len(rows), failed[0]))
            self.pause()
        else:
            self.backoff = 0.2

    def relay_batch_broken(self, rows):
        """The deliberate bug: mark sent and commit first, then produce unacknowledged."""
        self.mark_sent([r[0] for r in rows])

        def on_delivery(err, _msg):
            if err is not None:
                self.lost += 1
                self.throttle.log("lost", "delivery failed after the row was marked sent "
                                  "(lost): %s" % err)

        for _seq, tid, payload in rows:
            if not self.produce(tid, payload, on_delivery):
                self.lost += 1
        self.relayed += len(rows)
        self.producer.poll(0)

    def pause(self):
        common.sleep(self.backoff)
        self.backoff = min(self.backoff * 2, 2.0)

    def progress(self):
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY_S:
            self.last_progress = now
            if (self.relayed, self.lost) != self.reported:
                self.reported = (self.relayed, self.lost)
                log("relayed %d rows so far%s" % (self.relayed, ", %d deliveries failed after "
                                                  "marking" % self.lost if self.broken else ""))

    def loop(self):
        log("start: outbox of bank A %s → topic %s at %s%s" % (
            common.parse_url(self.bank_a_url)["host"], self.topic, self.bootstrap,
            " [BROKEN: mark-before-ack]" if self.broken else ""))
        while not common.STOP.is_set():
            self.progress()
            if self.producer is None:
                try:
                    self.make_producer()
                except Exception as exc:
                    self.throttle.log("mkprod", "cannot create the producer: %s" % describe(exc))
                    self.pause()
                    continue
            if self.fatal is not None:
                self.drop_producer("fatal error %s" % self.fatal)
                continue
            try:
                rows = self.fetch()
            except Exception as exc:
                self.db_error("reading the outbox", exc)
                self.pause()
                continue
            if not rows:
                self.backoff = 0.2
                self.producer.poll(IDLE_S)
                continue
            if self.broken:
                try:
                    self.relay_batch_broken(rows)
                except Exception as exc:
                    self.db_error("marking %d rows sent" % len(rows), exc)
                    self.pause()
            else:
                self.relay_batch(rows)
        close_quietly(self.conn)


def main():
    Relay().loop()


if __name__ == "__main__":
    common.run(main)

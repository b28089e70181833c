"""consumer: credits bank B from the Kafka topic, exactly once per transfer id.

For each message, in ONE MariaDB transaction: insert the transfer id into the service's
own `dedup` table (a duplicate key means the credit was already applied: roll back and
skip), then credit the account and write its ledger row, or — when bank B has no such
account — park the transfer in `dead_letters` for manual intervention. Only after that
commit is the message's offset committed to Kafka (synchronously), so a crash between
the two replays the message and the dedup row drops it. A database error never skips a
message: the same message is retried, on a fresh connection, until it goes through.

The offsets of the messages one consume() call returned (up to 100, usually one or a
few) are committed in one synchronous commit after the last of them is applied: the
same guarantee as a commit after every message — no offset is committed before its
message's bank B transaction, nor past a message not yet applied — at a fraction of
the cost (a synchronous offset commit takes ~5 ms on Kafka 4.1, a bank B transaction
~0.3 ms).

Messages come from Debezium's Outbox Event Router: key = the transfer id, value = the
outbox row's payload. Debezium delivers at least once: a Kafka Connect worker killed
between two offset flushes publishes again, when it comes back, what it sent since the
last flush, so duplicates are expected and the dedup table drops them.

CDC_BROKEN=no-dedup turns the dedup off on purpose: every message is credited, so a
replayed event credits its transfer twice.
"""

import json
import time

import pymysql
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

import common
from common import Throttle, close_quietly, describe, log

PROGRESS_EVERY_S = 30.0
# Messages taken per consume() call; each gets its own bank B transaction, and the
# batch's offsets are committed (synchronously) once every one of them is applied.
BATCH = 100

DEDUP_DDL = ("CREATE TABLE IF NOT EXISTS dedup (transfer_id VARCHAR(64) PRIMARY KEY) "
             "ENGINE=InnoDB")

ER_DUP_ENTRY = 1062


def parse(msg):
    """A message → (transfer id, to, amount, None), or (id, None, None, why) when the
    payload can never be credited (parked at once)."""
    key = msg.key()
    key = key.decode("utf-8", "replace") if key else None
    fallback = (key or "offset:%s:%d:%d" % (msg.topic(), msg.partition(), msg.offset()))[:64]
    try:
        body = json.loads(msg.value() or b"")
    except (ValueError, UnicodeDecodeError):
        return fallback, None, None, "malformed payload"
    if not isinstance(body, dict):
        return fallback, None, None, "malformed payload"
    tid, dst, amount = body.get("id"), body.get("to"), body.get("amount")
    if not isinstance(tid, str) or not tid or len(tid) > 64:
        return fallback, None, None, "malformed payload: bad id"
    if not isinstance(dst, str) or not dst:
        return tid, None, None, "malformed payload: bad to"
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return tid, None, None, "malformed payload: bad amount"
    return tid, dst, amount, None


class Credits:
    def __init__(self):
        self.bank_b_url = common.env("CHAOSBANK_BANK_B_URL")
        self.bootstrap = common.env("CHAOSBANK_KAFKA_BOOTSTRAP")
        self.topic = common.env("CHAOSBANK_TOPIC")
        self.group = common.env("CHAOSBANK_GROUP")
        self.no_dedup = common.BROKEN == "no-dedup"
        self.conn = None
        self.db_failed = False
        self.consumer = None
        self.fatal = None
        self.throttle = Throttle()
        self.counts = {"credited": 0, "duplicate": 0, "parked": 0}
        self.reported = dict(self.counts)
        self.last_progress = time.monotonic()

    # -- bank B -------------------------------------------------------------------

    def db(self):
        if self.conn is None or not self.conn.open:
            conn = common.mysql_connect(self.bank_b_url)
            try:
                with conn.cursor() as cur:
                    cur.execute(DEDUP_DDL)
                conn.commit()
            except Exception:
                close_quietly(conn)
                raise
            self.conn = conn
            if self.db_failed:
                log("reconnected to bank B")
                self.db_failed = False
        return self.conn

    def credit(self, tid, dst, amount, why):
        """One bank B transaction. Returns "credited", "parked" or "duplicate"."""
        conn = self.db()
        try:
            with conn.cursor() as cur:
                try:
                    if not self.no_dedup:
                        cur.execute("INSERT INTO dedup (transfer_id) VALUES (%s)", (tid,))
                except pymysql.err.IntegrityError as exc:
                    if exc.args and exc.args[0] == ER_DUP_ENTRY:
                        conn.rollback()
                        return "duplicate"
                    raise
                outcome = "credited"
                if why is None:
                    changed = cur.execute(
                        "UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
                    if changed == 0:
                        why = "no such account: %s" % dst
                if why is None:
                    cur.execute(
                        "INSERT INTO ledger (transfer_id, account, amount) VALUES (%s, %s, %s)",
                        (tid, dst, amount))
                else:
                    # Parked for manual intervention; the dedup row stays, so a
                    # redelivery does not park it twice.
                    cur.execute("INSERT INTO dead_letters (transfer_id, reason) VALUES (%s, %s)",
                                (tid, why))
                    outcome = "parked"
            conn.commit()
            return outcome
        except Exception:
            close_quietly(conn)
            self.conn = None
            raise

    def apply(self, msg):
        """Applies one message, retrying it until bank B takes it. None on a stop."""
        tid, dst, amount, why = parse(msg)
        backoff = 0.2
        while not common.STOP.is_set():
            try:
                outcome = self.credit(tid, dst, amount, why)
                if outcome == "parked":
                    self.throttle.log("parked", "parked transfer %s for manual intervention: %s"
                                      % (tid, why or "no such account: %s" % dst))
                return outcome
            except Exception as exc:
                self.db_failed = True
                self.throttle.log("db", "bank B error on transfer %s (%s); retrying the same "
                                  "message" % (tid, describe(exc)))
                common.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        return None

    # -- Kafka --------------------------------------------------------------------

    def on_error(self, err):
        if err.fatal():
            self.fatal = err
            log("fatal consumer error: %s" % err)
        else:
            self.throttle.log("kafka", "kafka: %s" % err)

    def on_assign(self, _consumer, partitions):
        log("assigned %s" % ", ".join("%s[%d]" % (p.topic, p.partition) for p in partitions))

    def on_revoke(self, _consumer, partitions):
        log("revoked %s" % ", ".join("%s[%d]" % (p.topic, p.partition) for p in partitions))

    def make_consumer(self):
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "client.id": "python-cdc-consumer",
            # Static membership: a consumer started again after a crash takes its
            # partitions back at once, instead of waiting out the dead member's session
            # (10 s) in a rebalance. One consumer process a service, so one id.
            "group.instance.id": "python-cdc-consumer",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 2000,
            "fetch.wait.max.ms": 100,
            "socket.keepalive.enable": True,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "error_cb": self.on_error,
            "log_level": 2,
        })
        consumer.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        self.consumer = consumer
        self.fatal = None

    def drop_consumer(self, why):
        log("recreating the consumer: %s" % why)
        consumer, self.consumer = self.consumer, None
        try:
            consumer.close()
        except Exception:
            pass

    def commit(self, applied):
        """Commits, synchronously, the offset after each partition's last applied message."""
        offsets = [TopicPartition(topic, partition, offset + 1)
                   for (topic, partition), offset in applied.items()]
        try:
            result = self.consumer.commit(offsets=offsets, asynchronous=False)
            errors = [tp.error for tp in result or [] if tp.error is not None]
            if errors:
                raise KafkaException(errors[0])
        except KafkaException as exc:
            # The credits are in bank B with their dedup rows: a redelivery is dropped.
            self.throttle.log("commit", "offset commit failed (%s); those messages may come "
                              "again and will be deduplicated" % describe(exc))
            self.note_fatal(exc.args[0] if exc.args else None)

    def note_fatal(self, err):
        """Remembers a fatal consumer error (a static member fenced after a lost join
        reply, say), so the loop makes the consumer anew: a fatal consumer consumes
        nothing more, and its error callback is not always called."""
        if isinstance(err, KafkaError) and (err.fatal() or err.code() == KafkaError._FATAL):
            if self.fatal is None:
                log("fatal consumer error: %s" % err)
            self.fatal = err

    def progress(self):
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY_S:
            self.last_progress = now
            if self.counts != self.reported:
                self.reported = dict(self.counts)
                log("so far: %(credited)d credited, %(duplicate)d duplicates dropped, "
                    "%(parked)d parked" % self.counts)

    def loop(self):
        log("start: topic %s group %s at %s → bank B %s%s" % (
            self.topic, self.group, self.bootstrap, common.parse_url(self.bank_b_url)["host"],
            " [BROKEN: no-dedup]" if self.no_dedup else ""))
        while not common.STOP.is_set():
            self.progress()
            if self.consumer is None:
                try:
                    self.make_consumer()
                except Exception as exc:
                    self.throttle.log("mkcons", "cannot create the consumer: %s" % describe(exc))
                    common.sleep(1.0)
                    continue
            if self.fatal is not None:
                self.drop_consumer("fatal error %s" % self.fatal)
                continue
            try:
                msgs = self.consumer.consume(num_messages=BATCH, timeout=0.5)
            except Exception as exc:
                self.throttle.log("poll", "consume failed: %s" % describe(exc))
                common.sleep(0.5)
                continue
            applied = {}
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        self.throttle.log("kafka", "kafka: %s" % err)
                    self.note_fatal(err)
                    continue
                outcome = self.apply(msg)
                if outcome is None:
                    break  # stopping: this message's offset stays uncommitted
                self.counts[outcome] += 1
                applied[(msg.topic(), msg.partition())] = msg.offset()
            if applied:
                self.commit(applied)
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception:
                pass
        close_quietly(self.conn)


def main():
    Credits().loop()


if __name__ == "__main__":
    common.run(main)

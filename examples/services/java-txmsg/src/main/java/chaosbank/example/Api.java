package chaosbank.example;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.client.producer.TransactionSendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * The api process: the transfer API on 0.0.0.0:$CHAOSBANK_PORT, and the RocketMQ
 * transactional producer behind it.
 *
 * <p>POST /transfers sends a half message (key = transfer id, body = the request) with
 * {@code sendMessageInTransaction}; the broker keeps it undelivered while
 * {@link #executeLocalTransaction} runs ONE bank A transaction: a {@code tx_state} row,
 * the debit and its ledger row. The commit decides: COMMIT_MESSAGE and 200 only after it
 * returned; ROLLBACK_MESSAGE and 409 for insufficient funds; ROLLBACK_MESSAGE (nothing
 * applied) or UNKNOW (the commit's outcome is unknown) and 503 for errors. When the
 * producer's verdict never reaches the broker, the broker asks back
 * ({@link #checkLocalTransaction}): the {@code tx_state} row is the answer.
 *
 * <p>Two deliberately wrong variants: {@code TXMSG_BROKEN=commit-unknown} (errors left to
 * the check-back, which commits without a row) and {@code TXMSG_BROKEN=state-apart} (the
 * {@code tx_state} row is written in a second bank A transaction after the debit's).
 */
final class Api implements TransactionListener {
    /** A half message without a tx_state row is rolled back only once it is this old. */
    static final long GRACE_MS = 30_000;
    /** The local transaction is not committed later than this after the half message. */
    static final long COMMIT_DEADLINE_MS = 15_000;
    static final int MAX_BODY = 64 * 1024;

    private final Db bankA = Db.postgres(Main.env("CHAOSBANK_BANK_A_URL"));
    private final String namesrv = Main.env("CHAOSBANK_ROCKETMQ_NAMESRV");
    private final String topic = Main.env("CHAOSBANK_TOPIC");
    private final String group = Main.env("CHAOSBANK_GROUP") + "-producer";
    private final int port = Integer.parseInt(Main.env("CHAOSBANK_PORT"));
    private final boolean broken = Main.BROKEN.equals("commit-unknown");
    /** The tx_state row in its own transaction, after the debit's commit (BROKEN). */
    private final boolean stateApart = Main.BROKEN.equals("state-apart");
    private final Main.Throttle throttle = new Main.Throttle();

    private volatile boolean schemaReady;
    private volatile TransactionMQProducer producer;
    private volatile HttpServer server;
    private final ExecutorService workers = Executors.newFixedThreadPool(16);
    /** Transfers whose sendMessageInTransaction is under way in this process. */
    private final Map<String, Integer> inFlight = new ConcurrentHashMap<>();
    private final AtomicLong accepted = new AtomicLong();
    private final AtomicLong checks = new AtomicLong();
    private final AtomicLong blindCommits = new AtomicLong(); // BROKEN only

    /** What the local transaction did, for the HTTP answer. */
    enum Outcome { COMMITTED, DUPLICATE, REJECTED, FAILED, UNKNOWN }

    /** The request, handed to executeLocalTransaction as sendMessageInTransaction's arg. */
    static final class Transfer {
        final String id;
        final String from;
        final String to;
        final long amount;
        /** When the half message went out: the commit deadline counts from here. */
        volatile long sentAt;
        volatile Outcome outcome = Outcome.FAILED;
        volatile String error = "the local transaction did not run";

        Transfer(String id, String from, String to, long amount) {
            this.id = id;
            this.from = from;
            this.to = to;
            this.amount = amount;
        }

        String json() {
            return "{\"id\":" + Json.quote(id) + ",\"from\":" + Json.quote(from) + ",\"to\":"
                    + Json.quote(to) + ",\"amount\":" + amount + "}";
        }
    }

    void run() throws InterruptedException {
        Main.log("start: serving on 0.0.0.0:" + port + ", bank A " + bankA.host + ", name server "
                + namesrv + ", topic " + topic + ", group " + group
                + (Main.BROKEN.isEmpty() ? "" : " [BROKEN: " + Main.BROKEN + "]"));
        listen();
        Thread schema = new Thread(this::prepareSchema, "schema");
        schema.setDaemon(true);
        schema.start();
        startProducer();
        long last = System.nanoTime();
        long reported = -1;
        boolean registered = false;
        while (Main.sleep(1000)) {
            registered = register(registered);
            if (System.nanoTime() - last >= 30_000_000_000L) {
                last = System.nanoTime();
                long now = accepted.get() + checks.get();
                if (now != reported) {
                    reported = now;
                    Main.log("accepted " + accepted.get() + " transfers so far, answered " + checks.get()
                            + " check-backs" + (broken ? ", " + blindCommits.get()
                            + " of them committed without a tx_state row" : ""));
                }
            }
        }
    }

    void shutdown() {
        HttpServer s = server;
        if (s != null) {
            s.stop(0);
        }
        TransactionMQProducer p = producer;
        producer = null;
        if (p != null) {
            p.shutdown();
        }
    }

    // -- startup ------------------------------------------------------------------

    private void listen() throws InterruptedException {
        while (!Main.stopping()) {
            try {
                HttpServer s = HttpServer.create(new InetSocketAddress("0.0.0.0", port), 128);
                s.createContext("/", this::handle);
                s.setExecutor(workers);
                s.start();
                server = s;
                return;
            } catch (BindException e) {
                Main.log("cannot listen on port " + port + " (" + Main.describe(e) + "); retrying");
            } catch (IOException e) {
                Main.log("cannot start the HTTP server (" + Main.describe(e) + "); retrying");
            }
            Main.sleep(1000);
        }
    }

    private void prepareSchema() {
        long backoff = 250;
        while (!Main.stopping()) {
            try {
                bankA.execute("CREATE TABLE IF NOT EXISTS tx_state ("
                        + "transfer_id VARCHAR(64) PRIMARY KEY, state VARCHAR(16) NOT NULL)");
                schemaReady = true;
                Main.log("tx_state table ready in bank A");
                return;
            } catch (SQLException e) {
                // Two processes racing on CREATE TABLE IF NOT EXISTS can clash; retry.
                throttle.log("schema", "bank A not ready (" + Main.describe(e) + "); retrying");
            }
            Main.sleep(backoff);
            backoff = Math.min(backoff * 2, 2000);
        }
    }

    private void startProducer() {
        long backoff = 500;
        while (!Main.stopping()) {
            TransactionMQProducer p = new TransactionMQProducer(group);
            p.setNamesrvAddr(namesrv);
            p.setSendMsgTimeout(5000);
            p.setVipChannelEnabled(false);
            p.setPollNameServerInterval(5000);
            // Re-register with a restarted broker quickly: it checks back only producers
            // it knows, and gives a half message up after transactionCheckMax checks.
            p.setHeartbeatBrokerInterval(5000);
            p.setTransactionListener(this);
            try {
                p.start();
                producer = p;
                Main.log("transactional producer started (group " + group + ")");
                return;
            } catch (Exception e) {
                throttle.log("producer", "cannot start the producer (" + Main.describe(e) + "); retrying");
                try {
                    p.shutdown();
                } catch (RuntimeException ignored) {
                    // a producer that never started
                }
            }
            Main.sleep(backoff);
            backoff = Math.min(backoff * 2, 5000);
        }
    }

    /**
     * Makes sure the producer knows the topic's brokers and has sent them a heartbeat.
     * A producer learns a broker only from the routes of the topics it publishes to, and
     * a broker sends check-backs only to the producers that heartbeat to it: a freshly
     * (re)started api that has not sent a message yet would never be asked about the
     * half messages its predecessor left, and the broker would give them up after
     * transactionCheckMax checks — losing the credits of committed debits.
     */
    private boolean register(boolean registered) {
        TransactionMQProducer p = producer;
        if (p == null) {
            return false;
        }
        try {
            var factory = p.getDefaultMQProducerImpl().getMqClientFactory();
            var info = p.getDefaultMQProducerImpl().getTopicPublishInfoTable().get(topic);
            if (info != null && info.ok()) {
                return true; // the client's own tasks keep the route and the heartbeats going
            }
            if (factory.updateTopicRouteInfoFromNameServer(topic)) {
                factory.sendHeartbeatToAllBrokerWithLock();
                Main.log("producer registered with the brokers of topic " + topic);
                return true;
            }
        } catch (RuntimeException e) {
            throttle.log("register", "cannot look the topic's route up: " + Main.describe(e));
        }
        if (registered) {
            throttle.log("register", "the producer lost the route of topic " + topic + "; retrying");
        }
        return false;
    }

    // -- HTTP ---------------------------------------------------------------------

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getPath();
            String method = ex.getRequestMethod();
            if (path.equals("/health") && method.equals("GET")) {
                if (healthy()) {
                    reply(ex, 200, "{\"status\":\"ok\"}");
                } else {
                    reply(ex, 503, "{\"status\":\"unavailable\"}");
                }
            } else if (path.equals("/transfers") && method.equals("POST")) {
                byte[] body = readBody(ex);
                if (body == null) {
                    reply(ex, 413, "{\"status\":\"error\",\"reason\":\"body too large\"}");
                    return;
                }
                transfer(ex, new String(body, StandardCharsets.UTF_8));
            } else {
                drain(ex.getRequestBody());
                reply(ex, 404, "{\"status\":\"error\",\"reason\":\"not found\"}");
            }
        } catch (IOException e) {
            throttle.log("client", "client connection ended: " + Main.describe(e));
        } catch (RuntimeException e) {
            Main.log("error serving a request: " + Main.describe(e));
            throw e;
        }
    }

    private static byte[] readBody(HttpExchange ex) throws IOException {
        InputStream in = ex.getRequestBody();
        byte[] body = in.readNBytes(MAX_BODY + 1);
        return body.length > MAX_BODY ? null : body;
    }

    private static void drain(InputStream in) throws IOException {
        in.readNBytes(MAX_BODY);
    }

    private static void reply(HttpExchange ex, int code, String json) throws IOException {
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(code, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    private boolean healthy() {
        if (!schemaReady || producer == null) {
            return false;
        }
        try {
            Connection c = bankA.get();
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
                rs.next();
            }
            c.rollback();
            return true;
        } catch (SQLException e) {
            bankA.drop();
            throttle.log("health", "health check: bank A unavailable: " + Main.describe(e));
            return false;
        }
    }

    private void transfer(HttpExchange ex, String body) throws IOException {
        Transfer t;
        try {
            t = parse(body);
        } catch (IllegalArgumentException e) {
            reply(ex, 400, "{\"status\":\"error\",\"reason\":" + Json.quote(e.getMessage()) + "}");
            return;
        }
        TransactionMQProducer p = producer;
        if (p == null || !schemaReady) {
            reply(ex, 503, "{\"status\":\"unavailable\",\"reason\":\"starting\"}");
            return;
        }
        Message msg = new Message(topic, "transfer", t.id, t.json().getBytes(StandardCharsets.UTF_8));
        inFlight.merge(t.id, 1, Integer::sum);
        t.sentAt = System.currentTimeMillis();
        TransactionSendResult r;
        try {
            r = p.sendMessageInTransaction(msg, t);
        } catch (Exception e) {
            // No half message was acknowledged, so the local transaction never ran.
            throttle.log("send", "transfer " + t.id + ": half message not sent, answered 503: "
                    + Main.describe(e));
            reply(ex, 503, "{\"status\":\"unknown\",\"reason\":\"broker unavailable\"}");
            return;
        } finally {
            inFlight.computeIfPresent(t.id, (k, n) -> n == 1 ? null : n - 1);
        }
        Outcome o = t.outcome;
        if (o == Outcome.REJECTED) {
            reply(ex, 409, "{\"status\":\"rejected\",\"reason\":\"insufficient funds\"}");
        } else if (o == Outcome.DUPLICATE
                || (o == Outcome.COMMITTED && r.getSendStatus() == SendStatus.SEND_OK
                    && r.getLocalTransactionState() == LocalTransactionState.COMMIT_MESSAGE)) {
            accepted.incrementAndGet();
            reply(ex, 200, "{\"status\":\"accepted\"}");
        } else {
            String why = o == Outcome.FAILED && r.getSendStatus() != SendStatus.SEND_OK
                    ? "half message stored with status " + r.getSendStatus() : t.error;
            throttle.log("transfer", "transfer " + t.id + ": " + o + ", answered 503: " + why);
            reply(ex, 503, "{\"status\":\"unknown\",\"reason\":" + Json.quote(why) + "}");
        }
    }

    private static Transfer parse(String body) {
        Map<String, Object> req = Json.parseObject(body);
        Object id = req.get("id");
        Object from = req.get("from");
        Object to = req.get("to");
        Object amount = req.get("amount");
        if (!(id instanceof String s) || s.isEmpty() || s.length() > 64) {
            throw new IllegalArgumentException("id must be a string of 1 to 64 characters");
        }
        if (!(from instanceof String f) || f.isEmpty() || f.length() > 32) {
            throw new IllegalArgumentException("from must be an account id");
        }
        if (!(to instanceof String d) || d.isEmpty() || d.length() > 32) {
            throw new IllegalArgumentException("to must be an account id");
        }
        if (!(amount instanceof Long a) || a <= 0) {
            throw new IllegalArgumentException("amount must be a positive integer");
        }
        return new Transfer(s, f, d, a);
    }

    // -- the transaction listener -------------------------------------------------

    /** Runs the debit in one bank A transaction, on the HTTP worker's thread. */
    @Override
    public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
        Transfer t = (Transfer) arg;
        for (int attempt = 1; ; attempt++) {
            boolean reused = bankA.hasConnection();
            boolean committing = false;
            try {
                Connection c = bankA.get();
                if (stateApart) {
                    // state-apart: only look the id up here; recordState writes the row
                    // after the commit.
                    try (PreparedStatement st = c.prepareStatement(
                            "SELECT 1 FROM tx_state WHERE transfer_id = ?")) {
                        st.setString(1, t.id);
                        try (ResultSet rs = st.executeQuery()) {
                            if (rs.next()) {
                                c.rollback();
                                t.outcome = Outcome.DUPLICATE; // committed by an earlier request
                                return LocalTransactionState.ROLLBACK_MESSAGE;
                            }
                        }
                    }
                } else {
                    // Claim the id first: a retry of the same transfer waits here for the
                    // first one's transaction, then finds its row.
                    try (PreparedStatement st = c.prepareStatement("INSERT INTO tx_state (transfer_id, state) "
                            + "VALUES (?, 'committed') ON CONFLICT (transfer_id) DO NOTHING")) {
                        st.setString(1, t.id);
                        if (st.executeUpdate() == 0) {
                            c.rollback();
                            t.outcome = Outcome.DUPLICATE; // committed by an earlier request
                            return LocalTransactionState.ROLLBACK_MESSAGE;
                        }
                    }
                }
                try (PreparedStatement st = c.prepareStatement(
                        "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?")) {
                    st.setLong(1, t.amount);
                    st.setString(2, t.from);
                    st.setLong(3, t.amount);
                    if (st.executeUpdate() != 1) {
                        c.rollback();
                        t.outcome = Outcome.REJECTED;
                        return LocalTransactionState.ROLLBACK_MESSAGE;
                    }
                }
                try (PreparedStatement st = c.prepareStatement(
                        "INSERT INTO ledger (transfer_id, account, amount) VALUES (?, ?, ?)")) {
                    st.setString(1, t.id);
                    st.setString(2, t.from);
                    st.setLong(3, -t.amount);
                    st.executeUpdate();
                }
                if (System.currentTimeMillis() - t.sentAt > COMMIT_DEADLINE_MS) {
                    // Too late: a check-back may soon roll the half message back.
                    c.rollback();
                    t.error = "local transaction too slow, rolled back";
                    return LocalTransactionState.ROLLBACK_MESSAGE;
                }
                committing = true;
                c.commit();
                if (stateApart && !recordState(t)) {
                    t.outcome = Outcome.UNKNOWN; // debited, but no row for the check-back
                    return LocalTransactionState.UNKNOW;
                }
                t.outcome = Outcome.COMMITTED;
                return LocalTransactionState.COMMIT_MESSAGE;
            } catch (SQLException | RuntimeException e) {
                bankA.drop();
                if (committing) {
                    // The COMMIT may or may not have been applied: let the check-back decide.
                    t.outcome = Outcome.UNKNOWN;
                    t.error = "bank A error at commit: " + Main.describe(e);
                    return LocalTransactionState.UNKNOW;
                }
                // Before COMMIT nothing is applied. A connection that went stale while idle
                // (bank A restarted) is retried once on a fresh one.
                if (reused && attempt == 1) {
                    throttle.log("stale", "bank A connection was stale (" + Main.describe(e)
                            + "); retrying on a new one");
                    continue;
                }
                t.outcome = Outcome.FAILED;
                t.error = "bank A error before commit: " + Main.describe(e);
                // The broken variant leaves every error to the check-back (which then
                // commits, finding no row): the half message of a debit that never
                // happened is delivered.
                return broken ? LocalTransactionState.UNKNOW : LocalTransactionState.ROLLBACK_MESSAGE;
            }
        }
    }

    /**
     * state-apart only: the {@code tx_state} row in a bank A transaction of its own, after
     * the debit's commit (the deliberate bug: a process that dies between the two commits
     * leaves a debit the check-back finds no row for, and rolls back). Retried on a fresh
     * connection until the commit deadline; false if it never went through.
     */
    private boolean recordState(Transfer t) {
        while (true) {
            try {
                Connection c = bankA.get();
                try (PreparedStatement st = c.prepareStatement("INSERT INTO tx_state (transfer_id, state) "
                        + "VALUES (?, 'committed') ON CONFLICT (transfer_id) DO NOTHING")) {
                    st.setString(1, t.id);
                    st.executeUpdate();
                }
                c.commit();
                return true;
            } catch (SQLException | RuntimeException e) {
                bankA.drop();
                if (System.currentTimeMillis() - t.sentAt > COMMIT_DEADLINE_MS || !Main.sleep(200)) {
                    t.error = "debited, but the tx_state row was not written: " + Main.describe(e);
                    return false;
                }
            }
        }
    }

    /** The broker asks about a half message whose verdict it never got. */
    @Override
    public LocalTransactionState checkLocalTransaction(MessageExt msg) {
        checks.incrementAndGet();
        String id = msg.getKeys();
        if (id == null || id.isEmpty()) {
            Main.log("check-back for message " + msg.getMsgId() + " without a key: rolled back");
            return LocalTransactionState.ROLLBACK_MESSAGE;
        }
        boolean found;
        try {
            Connection c = bankA.get();
            try (PreparedStatement st = c.prepareStatement("SELECT state FROM tx_state WHERE transfer_id = ?")) {
                st.setString(1, id);
                try (ResultSet rs = st.executeQuery()) {
                    found = rs.next();
                }
            }
            c.rollback();
        } catch (SQLException | RuntimeException e) {
            bankA.drop();
            throttle.log("check", "check-back for " + id + ": bank A error, answered UNKNOW: "
                    + Main.describe(e));
            return LocalTransactionState.UNKNOW;
        }
        if (found) {
            throttle.log("check-commit", "check-back for " + id + ": committed locally, COMMIT");
            return LocalTransactionState.COMMIT_MESSAGE;
        }
        if (broken) {
            // The deliberate bug: no record is taken for a commit.
            blindCommits.incrementAndGet();
            throttle.log("check-broken", "check-back for " + id + ": no tx_state row, COMMIT [BROKEN]");
            return LocalTransactionState.COMMIT_MESSAGE;
        }
        long age = System.currentTimeMillis() - msg.getBornTimestamp();
        if (inFlight.containsKey(id) || age < GRACE_MS) {
            return LocalTransactionState.UNKNOW; // the local transaction may still be running
        }
        throttle.log("check-rollback", "check-back for " + id + ": no tx_state row after "
                + age / 1000 + " s, ROLLBACK");
        return LocalTransactionState.ROLLBACK_MESSAGE;
    }
}

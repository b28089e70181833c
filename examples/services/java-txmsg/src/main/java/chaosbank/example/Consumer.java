package chaosbank.example;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.SQLIntegrityConstraintViolationException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyContext;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.remoting.protocol.heartbeat.MessageModel;

/**
 * The consumer process: a clustering push consumer of $CHAOSBANK_TOPIC in group
 * $CHAOSBANK_GROUP-consumer that credits bank B. Each message is applied in ONE bank B
 * transaction: a {@code dedup} row (a duplicate key means it was applied already), then
 * the credit and its ledger row, or a dead letter when bank B has no such account. A
 * database error never skips a message: it is retried here for a while, then handed back
 * to the broker (RECONSUME_LATER, redelivered after 1 s), without limit.
 */
final class Consumer {
    /** How long one delivery retries bank B before handing the message back. */
    static final long RETRY_FOR_MS = 10_000;

    private final Db bankB = Db.mariadb(Main.env("CHAOSBANK_BANK_B_URL"));
    private final String namesrv = Main.env("CHAOSBANK_ROCKETMQ_NAMESRV");
    private final String topic = Main.env("CHAOSBANK_TOPIC");
    private final String group = Main.env("CHAOSBANK_GROUP") + "-consumer";
    private final Main.Throttle throttle = new Main.Throttle();
    private volatile DefaultMQPushConsumer consumer;
    private final AtomicLong credited = new AtomicLong();
    private final AtomicLong duplicates = new AtomicLong();
    private final AtomicLong parked = new AtomicLong();
    private final AtomicLong redelivered = new AtomicLong();

    enum Result { CREDITED, DUPLICATE, PARKED }

    void run() {
        Main.log("start: bank B " + bankB.host + ", name server " + namesrv + ", topic " + topic
                + ", group " + group + (Main.BROKEN.isEmpty() ? "" : " [BROKEN: " + Main.BROKEN + "]"));
        prepareSchema();
        startConsumer();
        long last = System.nanoTime();
        String reported = "";
        while (Main.sleep(1000)) {
            if (System.nanoTime() - last >= 30_000_000_000L) {
                last = System.nanoTime();
                String now = counts();
                if (!now.equals(reported)) {
                    reported = now;
                    Main.log(now);
                }
            }
        }
    }

    private String counts() {
        return "credited " + credited.get() + ", duplicates " + duplicates.get() + ", parked "
                + parked.get() + ", handed back " + redelivered.get();
    }

    void shutdown() {
        DefaultMQPushConsumer c = consumer;
        consumer = null;
        if (c != null) {
            c.shutdown(); // persists the consumed offsets, leaves the group
        }
        Main.log("final counts: " + counts());
    }

    private void prepareSchema() {
        long backoff = 250;
        while (!Main.stopping()) {
            try {
                bankB.execute("CREATE TABLE IF NOT EXISTS dedup (transfer_id VARCHAR(64) PRIMARY KEY)");
                Main.log("dedup table ready in bank B");
                return;
            } catch (SQLException e) {
                throttle.log("schema", "bank B not ready (" + Main.describe(e) + "); retrying");
            }
            Main.sleep(backoff);
            backoff = Math.min(backoff * 2, 2000);
        }
    }

    private void startConsumer() {
        long backoff = 500;
        while (!Main.stopping()) {
            DefaultMQPushConsumer c = new DefaultMQPushConsumer(group);
            c.setNamesrvAddr(namesrv);
            c.setVipChannelEnabled(false);
            c.setPollNameServerInterval(5000);
            c.setMessageModel(MessageModel.CLUSTERING);
            c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
            c.setConsumeThreadMin(8);
            c.setConsumeThreadMax(8);
            c.setConsumeMessageBatchMaxSize(1);
            // Never to the dead-letter queue: every delivery hands back with delay level 1.
            c.setMaxReconsumeTimes(1_000_000);
            c.registerMessageListener(this::consume);
            try {
                c.subscribe(topic, "*");
                c.start();
                consumer = c;
                Main.log("push consumer started (group " + group + ")");
                return;
            } catch (Exception e) {
                throttle.log("consumer", "cannot start the consumer (" + Main.describe(e) + "); retrying");
                try {
                    c.shutdown();
                } catch (RuntimeException ignored) {
                    // a consumer that never started
                }
            }
            Main.sleep(backoff);
            backoff = Math.min(backoff * 2, 5000);
        }
    }

    private ConsumeConcurrentlyStatus consume(List<MessageExt> msgs, ConsumeConcurrentlyContext ctx) {
        for (MessageExt m : msgs) {
            if (!apply(m)) {
                redelivered.incrementAndGet();
                ctx.setDelayLevelWhenNextConsume(1); // 1 s, instead of the growing default
                return ConsumeConcurrentlyStatus.RECONSUME_LATER;
            }
        }
        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
    }

    /** Applies one message; false if bank B kept failing (the message is handed back). */
    private boolean apply(MessageExt m) {
        String body = new String(m.getBody(), StandardCharsets.UTF_8);
        String id;
        String to;
        long amount;
        try {
            Map<String, Object> t = Json.parseObject(body);
            id = (String) t.get("id");
            to = (String) t.get("to");
            amount = (Long) t.get("amount");
            if (id == null || to == null) {
                throw new IllegalArgumentException("id or to missing");
            }
        } catch (RuntimeException e) {
            // Cannot be credited by any retry: parked for a person, under its key.
            id = m.getKeys() != null ? m.getKeys() : m.getMsgId();
            to = null;
            amount = 0;
            Main.log("message " + m.getMsgId() + " (key " + id + ") is malformed: " + Main.describe(e));
        }
        long deadline = System.currentTimeMillis() + RETRY_FOR_MS;
        long backoff = 100;
        for (int attempt = 1; ; attempt++) {
            try {
                Result r = credit(id, to, amount);
                switch (r) {
                    case CREDITED -> credited.incrementAndGet();
                    case DUPLICATE -> duplicates.incrementAndGet();
                    case PARKED -> parked.incrementAndGet();
                }
                if (attempt > 1) {
                    throttle.log("recovered", "transfer " + id + " applied (" + r + ") after "
                            + attempt + " attempts");
                }
                return true;
            } catch (SQLException | RuntimeException e) {
                bankB.drop();
                throttle.log("db", "bank B error applying " + id + " (attempt " + attempt + "): "
                        + Main.describe(e));
            }
            if (Main.stopping() || System.currentTimeMillis() + backoff > deadline || !Main.sleep(backoff)) {
                return false;
            }
            backoff = Math.min(backoff * 2, 2000);
        }
    }

    /** ONE bank B transaction: dedup row, then credit + ledger row, or a dead letter. */
    private Result credit(String id, String to, long amount) throws SQLException {
        Connection c = bankB.get();
        try {
            try (PreparedStatement st = c.prepareStatement("INSERT INTO dedup (transfer_id) VALUES (?)")) {
                st.setString(1, id);
                st.executeUpdate();
            } catch (SQLIntegrityConstraintViolationException e) {
                c.rollback();
                return Result.DUPLICATE;
            } catch (SQLException e) {
                if (e.getErrorCode() == 1062) { // ER_DUP_ENTRY
                    c.rollback();
                    return Result.DUPLICATE;
                }
                throw e;
            }
            int changed = 0;
            if (to != null) {
                try (PreparedStatement st = c.prepareStatement(
                        "UPDATE accounts SET balance = balance + ? WHERE id = ?")) {
                    st.setLong(1, amount);
                    st.setString(2, to);
                    changed = st.executeUpdate();
                }
            }
            Result r;
            if (changed == 0) {
                try (PreparedStatement st = c.prepareStatement(
                        "INSERT INTO dead_letters (transfer_id, reason) VALUES (?, ?)")) {
                    st.setString(1, id);
                    st.setString(2, to == null ? "malformed message" : "no such account: " + to);
                    st.executeUpdate();
                }
                r = Result.PARKED;
            } else {
                try (PreparedStatement st = c.prepareStatement(
                        "INSERT INTO ledger (transfer_id, account, amount) VALUES (?, ?, ?)")) {
                    st.setString(1, id);
                    st.setString(2, to);
                    st.setLong(3, amount);
                    st.executeUpdate();
                }
                r = Result.CREDITED;
            }
            c.commit();
            if (r == Result.PARKED) {
                Main.log("transfer " + id + " parked in dead_letters: "
                        + (to == null ? "malformed message" : "no such account " + to));
            }
            return r;
        } catch (SQLException | RuntimeException e) {
            Db.rollbackQuietly(c);
            throw e;
        }
    }
}

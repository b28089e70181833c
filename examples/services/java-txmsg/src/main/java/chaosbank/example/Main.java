package chaosbank.example;

import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Entry point: {@code java -jar java-txmsg.jar api|consumer}. Also the helpers both
 * processes share: the environment, one-line logging (with repeats held back), the stop
 * flag set by SIGTERM, and a shutdown that never takes longer than {@link #STOP_BUDGET_MS}.
 */
public final class Main {
    /**
     * The deliberately wrong variants: TXMSG_BROKEN=commit-unknown, the check-back commits a
     * half message it has no record of (broken.toml); TXMSG_BROKEN=state-apart, the
     * tx_state row is written in a second bank A transaction after the debit's
     * (state-apart.toml).
     */
    static final String BROKEN = System.getenv().getOrDefault("TXMSG_BROKEN", "").trim();
    static final String PROCESS = System.getenv().getOrDefault("CHAOSBANK_PROCESS", "java-txmsg");
    /** Counted down by the shutdown hook: every loop watches it. */
    static final CountDownLatch STOP = new CountDownLatch(1);
    static final long STOP_BUDGET_MS = 2500;

    private Main() {}

    public static void main(String[] args) throws Exception {
        String role = args.length > 0 ? args[0] : "";
        // The RocketMQ client logs to a file outside the read-only /service; with
        // TXMSG_CLIENT_LOG=console its warnings go to stdout too.
        System.setProperty("rocketmq.log.root", "/tmp/rocketmqlogs");
        System.setProperty("rocketmq.log.level", "warn");
        System.setProperty("mq.consoleAppender.enabled",
                String.valueOf("console".equals(System.getenv("TXMSG_CLIENT_LOG"))));
        // MariaDB Connector/J would print every duplicate-key error it returns.
        System.setProperty("mariadb.logging.disable", "true");
        Runnable stopper;
        switch (role) {
            case "api" -> {
                Api api = new Api();
                stopper = api::shutdown;
                onStop(stopper);
                api.run();
            }
            case "consumer" -> {
                Consumer consumer = new Consumer();
                stopper = consumer::shutdown;
                onStop(stopper);
                consumer.run();
            }
            default -> {
                System.err.println("usage: java -jar java-txmsg.jar api|consumer");
                // A process may exit only when asked to: wait for the stop instead.
                onStop(() -> {});
                STOP.await();
            }
        }
        STOP.await();
    }

    /** On SIGTERM: set the stop flag, run {@code shutdown} for at most the budget, then halt. */
    private static void onStop(Runnable shutdown) {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log("received the stop signal, stopping");
            STOP.countDown();
            Thread t = new Thread(() -> {
                try {
                    shutdown.run();
                } catch (Throwable e) {
                    log("error while stopping: " + describe(e));
                }
            }, "shutdown");
            t.setDaemon(true);
            t.start();
            try {
                t.join(STOP_BUDGET_MS);
            } catch (InterruptedException ignored) {
                // halt below
            }
            if (t.isAlive()) {
                StringBuilder at = new StringBuilder();
                StackTraceElement[] st = t.getStackTrace();
                for (int i = 0; i < Math.min(6, st.length); i++) {
                    at.append(i == 0 ? "" : " < ").append(st[i].getClassName()
                            .replaceAll(".*\\.", "")).append('.').append(st[i].getMethodName());
                }
                log("shutdown took longer than " + STOP_BUDGET_MS + " ms (at " + at + "); exiting anyway");
            } else {
                log("stopped");
            }
            Runtime.getRuntime().halt(0);
        }, "stop"));
    }

    static boolean stopping() {
        return STOP.getCount() == 0;
    }

    /** Sleeps, returning early (false) when the process is stopping. */
    static boolean sleep(long ms) {
        try {
            return !STOP.await(ms, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** A required environment variable; without it the process logs and waits for the stop. */
    static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isBlank()) {
            log("missing environment variable " + name + "; waiting for SIGTERM");
            while (true) {
                try {
                    STOP.await();
                    Thread.sleep(60_000); // the shutdown hook halts the JVM meanwhile
                } catch (InterruptedException ignored) {
                    // keep waiting
                }
            }
        }
        return v.trim();
    }

    static synchronized void log(String msg) {
        System.out.println(Instant.now() + " " + PROCESS + ": " + msg);
        System.out.flush();
    }

    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = e; c != null && sb.length() < 300; c = c.getCause()) {
            if (sb.length() > 0) {
                sb.append(" <- ");
            }
            sb.append(c.getClass().getSimpleName());
            if (c.getMessage() != null) {
                sb.append(": ").append(c.getMessage().replace('\n', ' '));
            }
            if (c.getCause() == c) {
                break;
            }
        }
        return sb.length() > 300 ? sb.substring(0, 300) + "…" : sb.toString();
    }

    /** Logs a recurring message (an outage's retries) at most once every 5 s per key. */
    static final class Throttle {
        private final Map<String, long[]> seen = new HashMap<>(); // key → {last ms, held}

        synchronized void log(String key, String msg) {
            long now = System.nanoTime() / 1_000_000;
            long[] s = seen.get(key);
            if (s != null && now - s[0] < 5000) {
                s[1]++;
                return;
            }
            long held = s == null ? 0 : s[1];
            seen.put(key, new long[] {now, 0});
            Main.log(held > 0 ? msg + " (" + held + " similar held back)" : msg);
        }
    }
}

package chaosbank.example;

import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

/**
 * The banks' connections: chaosbank's URLs ({@code postgres://user:pw@host:port/db},
 * {@code mysql://user:pw@host:port/db}) turned into JDBC ones with short timeouts, so a
 * partition ends a blocked call within about 10 s instead of hanging a thread. Each
 * thread keeps one connection ({@link #get}) and drops it after any error ({@link #drop}).
 */
final class Db {
    private final String jdbcUrl;
    private final Properties props = new Properties();
    final String host;
    private final ThreadLocal<Connection> local = new ThreadLocal<>();

    private Db(String jdbcUrl, String user, String password, String host) {
        this.jdbcUrl = jdbcUrl;
        this.host = host;
        props.setProperty("user", user);
        props.setProperty("password", password);
    }

    /** Bank A: PostgreSQL. */
    static Db postgres(String url) {
        URI u = URI.create(url);
        Db db = new Db("jdbc:postgresql://" + u.getHost() + ":" + port(u, 5432) + u.getRawPath(),
                user(u), password(u), u.getHost() + ":" + port(u, 5432));
        db.props.setProperty("connectTimeout", "3");     // seconds
        db.props.setProperty("socketTimeout", "2");      // seconds, every read: a bank A outage
                                                          // fails statements, never hangs them
        db.props.setProperty("loginTimeout", "10");
        db.props.setProperty("tcpKeepAlive", "true");
        db.props.setProperty("ApplicationName", Main.PROCESS);
        return db;
    }

    /** Bank B: MariaDB. */
    static Db mariadb(String url) {
        URI u = URI.create(url);
        Db db = new Db("jdbc:mariadb://" + u.getHost() + ":" + port(u, 3306) + u.getRawPath(),
                user(u), password(u), u.getHost() + ":" + port(u, 3306));
        db.props.setProperty("connectTimeout", "3000");  // milliseconds
        db.props.setProperty("socketTimeout", "10000");  // milliseconds, every read
        db.props.setProperty("tcpKeepAlive", "true");
        // A row lock is waited for 5 s, less than a read: a blocked statement fails
        // instead of being abandoned while its session still waits (and then holds the
        // lock until the server notices); a transaction cut off by a partition and left
        // idle is rolled back after 20 s, so its locks do not outlive it.
        db.props.setProperty("sessionVariables",
                "innodb_lock_wait_timeout=5,idle_transaction_timeout=20");
        return db;
    }

    private static int port(URI u, int dflt) {
        return u.getPort() > 0 ? u.getPort() : dflt;
    }

    private static String user(URI u) {
        String info = u.getRawUserInfo() == null ? "" : u.getRawUserInfo();
        int colon = info.indexOf(':');
        return decode(colon < 0 ? info : info.substring(0, colon));
    }

    private static String password(URI u) {
        String info = u.getRawUserInfo() == null ? "" : u.getRawUserInfo();
        int colon = info.indexOf(':');
        return colon < 0 ? "" : decode(info.substring(colon + 1));
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    /** A new connection, autocommit off. */
    Connection connect() throws SQLException {
        Connection c = DriverManager.getConnection(jdbcUrl, props);
        try {
            c.setAutoCommit(false);
        } catch (SQLException e) {
            closeQuietly(c);
            throw e;
        }
        return c;
    }

    /** This thread's connection, (re)connected on demand. */
    Connection get() throws SQLException {
        Connection c = local.get();
        if (c == null) {
            c = connect();
            local.set(c);
        }
        return c;
    }

    /** True if this thread holds a connection made earlier (it may have gone stale). */
    boolean hasConnection() {
        return local.get() != null;
    }

    /** Forgets (and closes) this thread's connection after an error. */
    void drop() {
        Connection c = local.get();
        local.remove();
        closeQuietly(c);
    }

    /** Runs DDL in its own transaction on a fresh connection. */
    void execute(String sql) throws SQLException {
        try (Connection c = connect(); Statement st = c.createStatement()) {
            st.execute(sql);
            c.commit();
        }
    }

    static void rollbackQuietly(Connection c) {
        try {
            c.rollback();
        } catch (SQLException | RuntimeException ignored) {
            // the connection is dropped by the caller
        }
    }

    static void closeQuietly(Connection c) {
        if (c == null) {
            return;
        }
        // close() may write to a dead socket; abort() does not wait.
        try {
            c.abort(Runnable::run);
        } catch (SQLException | RuntimeException ignored) {
            try {
                c.close();
            } catch (SQLException | RuntimeException ignored2) {
                // nothing left to do
            }
        }
    }
}

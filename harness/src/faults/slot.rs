//! The `slot-loss` fault: bank A's logical replication slot dropped, as a failover to a
//! replica that never had it does. The walsender holding the slot (Debezium's
//! connection, `pg_replication_slots.active_pid`) is terminated with
//! `pg_terminate_backend`, then the slot is dropped with `pg_drop_replication_slot`,
//! trying again while the walsender is still on its way out. Debezium's connector
//! recreates the slot when its task starts again: at the server's current position, so
//! what was committed meanwhile is never read unless the connector refuses to go on
//! (`offset.mismatch.strategy`).
//!
//! Run with `psql` inside the PostgreSQL container (`docker exec`), so no network fault
//! of the run can keep it from the server.

use crate::error::{Error, Result};

/// The slot `outbox-cdc`'s connector reads bank A through.
pub use workloads::connect::CONNECTOR as OUTBOX_SLOT;

/// How many times the drop is tried while the slot is still held (50 ms apart).
const DROP_TRIES: u32 = 100;

/// A slot name as PostgreSQL accepts it (lower-case letters, digits and `_`, at most
/// 63 characters), so it can be written into SQL as it is; else why not.
pub fn check_name(slot: &str) -> std::result::Result<(), String> {
    let ok = !slot.is_empty()
        && slot.len() <= 63
        && slot
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{slot:?} is not a replication slot name (lower-case letters, digits and _, \
             1 to 63 characters)"
        ))
    }
}

/// The query that reads the slot before it is dropped: one line
/// `active_pid|restart_lsn|confirmed_flush_lsn`, none when there is no such slot.
pub fn state_sql(slot: &str) -> std::result::Result<String, String> {
    check_name(slot)?;
    Ok(format!(
        "SELECT coalesce(active_pid::text, ''), coalesce(restart_lsn::text, ''), \
         coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots \
         WHERE slot_name = '{slot}'"
    ))
}

/// The block that terminates the slot's walsender and drops the slot, trying again
/// while it is still held; it fails with "no replication slot …" when there is none.
pub fn drop_sql(slot: &str) -> std::result::Result<String, String> {
    check_name(slot)?;
    Ok(format!(
        "DO $$
DECLARE pid int; tries int := 0;
BEGIN
  LOOP
    SELECT active_pid INTO pid FROM pg_replication_slots WHERE slot_name = '{slot}';
    IF NOT FOUND THEN
      RAISE EXCEPTION 'no replication slot {slot}' USING ERRCODE = 'undefined_object';
    END IF;
    IF pid IS NOT NULL THEN PERFORM pg_terminate_backend(pid); END IF;
    BEGIN
      PERFORM pg_drop_replication_slot('{slot}');
      EXIT;
    EXCEPTION WHEN object_in_use THEN
      tries := tries + 1;
      IF tries >= {DROP_TRIES} THEN RAISE; END IF;
      PERFORM pg_sleep(0.05);
    END;
  END LOOP;
END $$"
    ))
}

/// What the slot was when it was read: `None` when there is no such slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotState {
    /// The walsender holding it, if one did.
    pub active_pid: Option<u32>,
    /// The oldest WAL position it kept.
    pub restart_lsn: String,
    /// The position its reader confirmed.
    pub confirmed_flush_lsn: String,
}

/// Reads [`state_sql`]'s answer (`psql -tA`).
pub fn parse_state(out: &str) -> Option<SlotState> {
    let line = out.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut parts = line.split('|');
    let pid = parts.next()?;
    Some(SlotState {
        active_pid: pid.parse().ok(),
        restart_lsn: parts.next().unwrap_or("").to_string(),
        confirmed_flush_lsn: parts.next().unwrap_or("").to_string(),
    })
}

impl SlotState {
    /// What was dropped, for the fault's event.
    pub fn describe(&self, slot: &str) -> String {
        let lsn = |s: &str| if s.is_empty() { "none" } else { s }.to_string();
        format!(
            "replication slot {slot} dropped (confirmed_flush_lsn {}, restart_lsn {}); {}",
            lsn(&self.confirmed_flush_lsn),
            lsn(&self.restart_lsn),
            match self.active_pid {
                Some(pid) => format!("its walsender (pid {pid}) terminated"),
                None => "no walsender held it".to_string(),
            }
        )
    }
}

/// Drops `slot` on the PostgreSQL container `container` (database and user `user`) and
/// says what was dropped. [`Error::NotFired`] when there is no such slot (nothing was
/// done: the connector has not made it again since the last loss).
pub async fn drop_slot(container: &str, user: &str, slot: &str) -> Result<String> {
    let bad = |e: String| Error::Config(format!("slot-loss: {e}"));
    let psql = |sql: String| {
        let container = container.to_string();
        let user = user.to_string();
        async move {
            crate::docker::run_command(
                "docker",
                &[
                    "exec",
                    &container,
                    "psql",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-U",
                    &user,
                    "-d",
                    &user,
                    "-tAc",
                    &sql,
                ],
            )
            .await
        }
    };
    let state = match psql(state_sql(slot).map_err(bad)?).await {
        Ok(out) => out,
        // PostgreSQL down (another fault holds it, or it is starting again): nothing
        // was done, so the fault did not fire rather than failed.
        Err(e) if down(&e.to_string()) => {
            return Err(Error::NotFired(format!(
                "slot-loss: postgres does not take connections ({}): nothing dropped",
                e.to_string().lines().last().unwrap_or("").trim()
            )))
        }
        Err(e) => return Err(e),
    };
    let Some(state) = parse_state(&state) else {
        return Err(Error::NotFired(format!(
            "slot-loss: postgres has no replication slot {slot} (not made again since it \
             was last dropped): nothing to drop"
        )));
    };
    match psql(drop_sql(slot).map_err(bad)?).await {
        Ok(_) => Ok(state.describe(slot)),
        Err(e) if e.to_string().contains("no replication slot") => Err(Error::NotFired(format!(
            "slot-loss: replication slot {slot} vanished before it was dropped"
        ))),
        Err(e) => Err(e),
    }
}

/// Whether a failed `docker exec psql` says PostgreSQL was down rather than refused.
fn down(error: &str) -> bool {
    [
        "is not running",
        "is paused",
        "connection to server",
        "the database system is",
    ]
    .iter()
    .any(|m| error.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_slot_names_reach_the_sql() {
        assert!(check_name("chaosbank_outbox_a").is_ok());
        for bad in ["", "x'; DROP TABLE t; --", "Upper", "a-b", &"a".repeat(64)] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains("not a replication slot name"), "{e}");
            assert!(drop_sql(bad).is_err() && state_sql(bad).is_err());
        }
        let sql = drop_sql(OUTBOX_SLOT).unwrap();
        assert!(sql.contains("pg_drop_replication_slot('chaosbank_outbox_a')"));
        assert!(sql.contains("pg_terminate_backend(pid)"));
        assert!(sql.contains("WHEN object_in_use"));
    }

    #[test]
    fn the_slots_state_names_what_was_dropped() {
        let s = parse_state("123|0/1A2B|0/1A30\n").unwrap();
        assert_eq!(s.active_pid, Some(123));
        let d = s.describe("s");
        assert!(d.contains("confirmed_flush_lsn 0/1A30"), "{d}");
        assert!(d.contains("walsender (pid 123) terminated"), "{d}");
        let idle = parse_state("|0/1|\n").unwrap();
        assert_eq!(idle.active_pid, None);
        assert!(idle.describe("s").contains("no walsender held it"));
        assert!(idle.describe("s").contains("confirmed_flush_lsn none"));
        assert!(down("psql: error: connection to server on socket \"/x\" failed: FATAL:  the database system is starting up"));
        assert!(down(
            "Error response from daemon: container abc is not running"
        ));
        assert!(!down("ERROR:  permission denied"));
        assert_eq!(parse_state("\n"), None);
        assert_eq!(parse_state(""), None);
    }
}

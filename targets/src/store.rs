//! The store: the SQLite tables `orders` (of `POST /orders`) and `jobs` (of
//! `POST /jobs`), opened at start-up, closed by the [`STORE`](crate::STORE)
//! cleanup step.
//!
//! The contract's store check is the strictest rule a target meets: after
//! the exit, every `201` a client received has its row, and every row had
//! its `201` delivered. The store only has to make a commit durable against
//! the process being killed; what keeps the two sides in step is the drain
//! (an order's request is in progress from its commit to its answer) and the
//! order of cleanup (the store, registered first, closes last). A job's row
//! is kept the same way: the job is in flight from its `202` until its row
//! is committed (see [`jobs`](crate::jobs)).

use crate::events::log;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// How the [`Store`] journals its commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journal {
    /// SQLite's default rollback journal.
    Rollback,
    /// Write-ahead log with `synchronous = NORMAL`: a commit is a write to
    /// the log, without an fsync; it survives the process being killed,
    /// which is what the contract's store checks. For a target that inserts
    /// on its runtime's thread.
    Wal,
}

/// The orders and jobs tables, in SQLite; a cheap handle, cloned into every
/// route that writes to them.
///
/// The connection sits behind a mutex: SQLite serialises writers anyway,
/// and [`Store::close`] has to take it away from every clone at once.
#[derive(Clone)]
pub struct Store(Arc<Mutex<Option<rusqlite::Connection>>>);

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("open", &self.lock().is_some())
            .finish()
    }
}

/// Why an order or a job was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// That id is already stored.
    Duplicate,
    /// The store failed, or is closed.
    Failed,
}

/// A table of the store.
#[derive(Clone, Copy)]
enum Table {
    Orders,
    Jobs,
}

impl Store {
    /// Opens (creating it if missing) the file at `path`, with the tables
    /// `orders (id TEXT PRIMARY KEY)` and `jobs (id TEXT PRIMARY KEY)`.
    ///
    /// # Errors
    ///
    /// SQLite's, when the file cannot be opened or the table made.
    pub fn open(path: &Path, journal: Journal) -> rusqlite::Result<Store> {
        let connection = rusqlite::Connection::open(path)?;
        // Rule 27: during an upgrade two processes write to the file; one
        // waits for the other's lock rather than failing.
        connection.busy_timeout(BUSY_TIMEOUT)?;
        if journal == Journal::Wal {
            connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        }
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY);",
        )?;
        Ok(Store(Arc::new(Mutex::new(Some(connection)))))
    }

    /// The connection; a panic elsewhere does not poison it for the rest.
    fn lock(&self) -> MutexGuard<'_, Option<rusqlite::Connection>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits the order `id`. Blocks on SQLite.
    ///
    /// # Errors
    ///
    /// [`Insert::Duplicate`] when `id` is already stored, else
    /// [`Insert::Failed`] (logged), also once the store is closed.
    pub fn insert(&self, id: &str) -> Result<(), Insert> {
        self.insert_into(Table::Orders, id)
    }

    /// Commits the row `id` of the table `jobs`: a job's work is done.
    /// Blocks on SQLite.
    ///
    /// # Errors
    ///
    /// As [`Store::insert`].
    pub fn insert_job(&self, id: &str) -> Result<(), Insert> {
        self.insert_into(Table::Jobs, id)
    }

    /// Whether the table `jobs` has the row `id`. Blocks on SQLite.
    ///
    /// # Errors
    ///
    /// [`Insert::Failed`] (logged) when the store failed or is closed.
    pub fn has_job(&self, id: &str) -> Result<bool, Insert> {
        let connection = self.lock();
        let connection = connection.as_ref().ok_or(Insert::Failed)?;
        let found = connection
            .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")
            .and_then(|mut select| select.exists([id]));
        found.map_err(|error| {
            log(format_args!("look up job {id}: {error}"));
            Insert::Failed
        })
    }

    fn insert_into(&self, table: Table, id: &str) -> Result<(), Insert> {
        let mut connection = self.lock();
        let connection = connection.as_mut().ok_or(Insert::Failed)?;
        match insert_immediate(connection, table, id) {
            Ok(_) => Ok(()),
            Err(error)
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                Err(Insert::Duplicate)
            }
            Err(error) => {
                log(format_args!("insert {id}: {error}"));
                Err(Insert::Failed)
            }
        }
    }

    /// Closes the store; later inserts fail. Blocks on SQLite.
    ///
    /// # Errors
    ///
    /// SQLite's, when closing fails.
    pub fn close(&self) -> io::Result<()> {
        match self.lock().take() {
            Some(connection) => connection
                .close()
                .map_err(|(_, error)| io::Error::other(error)),
            None => Ok(()),
        }
    }
}

/// How long an insert waits for the other process's lock (rule 27).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Inserts in a transaction that takes the write lock first (`BEGIN
/// IMMEDIATE`): waiting for a lock then goes through the busy timeout, where
/// a deferred transaction that read first could be refused at once (SQLite
/// does not wait when waiting could deadlock), with another process
/// writing to the file.
fn insert_immediate(
    connection: &mut rusqlite::Connection,
    table: Table,
    id: &str,
) -> rusqlite::Result<()> {
    let sql = match table {
        Table::Orders => "INSERT INTO orders (id) VALUES (?1)",
        Table::Jobs => "INSERT INTO jobs (id) VALUES (?1)",
    };
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    transaction.execute(sql, [id])?;
    transaction.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Scratch;

    #[test]
    fn the_store_refuses_duplicates_and_closes() {
        let dir = Scratch::new("store");
        for journal in [Journal::Rollback, Journal::Wal] {
            let path = dir.path().join(format!("{journal:?}.sqlite"));
            let store = Store::open(&path, journal).unwrap();
            assert_eq!(store.insert("a"), Ok(()));
            assert_eq!(store.insert("a"), Err(Insert::Duplicate));
            assert_eq!(store.has_job("a"), Ok(false));
            assert_eq!(store.insert_job("a"), Ok(()));
            assert_eq!(store.insert_job("a"), Err(Insert::Duplicate));
            assert_eq!(store.has_job("a"), Ok(true));
            store.close().unwrap();
            assert_eq!(store.insert("b"), Err(Insert::Failed));
            assert_eq!(store.insert_job("b"), Err(Insert::Failed));
            assert_eq!(store.has_job("a"), Err(Insert::Failed));
            let store = Store::open(&path, journal).unwrap();
            assert_eq!(store.insert("a"), Err(Insert::Duplicate));
            assert_eq!(store.has_job("a"), Ok(true));
            store.close().unwrap();
        }
    }

    /// Rule 27: two processes' connections to one file (two stores here),
    /// inserting at once from many threads, lose and refuse nothing.
    #[test]
    fn two_stores_on_one_file_insert_at_once() {
        let dir = Scratch::new("store-shared");
        for journal in [Journal::Rollback, Journal::Wal] {
            let path = dir.path().join(format!("{journal:?}.sqlite"));
            let stores = [
                Store::open(&path, journal).unwrap(),
                Store::open(&path, journal).unwrap(),
            ];
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let store = stores[t % 2].clone();
                    std::thread::spawn(move || {
                        (0..50)
                            .filter(|i| store.insert(&format!("{t}-{i}")).is_err())
                            .count()
                    })
                })
                .collect();
            let failed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(failed, 0, "{journal:?}: inserts refused");
            for store in &stores {
                store.close().unwrap();
            }
            let connection = rusqlite::Connection::open(&path).unwrap();
            let rows: i64 = connection
                .query_row("SELECT COUNT(*) FROM orders", [], |row| row.get(0))
                .unwrap();
            assert_eq!(rows, 400, "{journal:?}");
        }
    }
}

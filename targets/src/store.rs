//! The orders store: one SQLite table, opened at start-up, closed by the
//! [`STORE`](crate::STORE) cleanup step.
//!
//! The contract's store check is the strictest rule a target meets: after
//! the exit, every `201` a client received has its row, and every row had
//! its `201` delivered. The store only has to make a commit durable against
//! the process being killed; what keeps the two sides in step is the drain
//! (an order's request is in progress from its commit to its answer) and the
//! order of cleanup (the store, registered first, closes last).

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

/// The orders table, in SQLite; a cheap handle, cloned into every route
/// that takes orders.
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

/// Why an order was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// That id is already stored.
    Duplicate,
    /// The store failed, or is closed.
    Failed,
}

impl Store {
    /// Opens (creating it if missing) the file at `path`, with a table
    /// `orders (id TEXT PRIMARY KEY)`.
    ///
    /// # Errors
    ///
    /// SQLite's, when the file cannot be opened or the table made.
    pub fn open(path: &Path, journal: Journal) -> rusqlite::Result<Store> {
        let connection = rusqlite::Connection::open(path)?;
        if journal == Journal::Wal {
            connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        }
        connection.execute_batch("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")?;
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
        let connection = self.lock();
        let connection = connection.as_ref().ok_or(Insert::Failed)?;
        match connection.execute("INSERT INTO orders (id) VALUES (?1)", [id]) {
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
            store.close().unwrap();
            assert_eq!(store.insert("b"), Err(Insert::Failed));
            let store = Store::open(&path, journal).unwrap();
            assert_eq!(store.insert("a"), Err(Insert::Duplicate));
            store.close().unwrap();
        }
    }
}

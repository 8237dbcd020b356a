//! The relay's one error: a kind that means something in the relay's own terms, a message
//! fit for the client, a code the pages translate, a retry delay where one applies, and the
//! cause chain for the log. Services return it; `http::error` maps it to HTTP, the one place
//! that knows statuses.

use std::time::Duration;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input (a request, a config value, a CLI argument) is malformed or not acceptable.
    InvalidArgument,
    /// An input is larger than its bound.
    TooLarge,
    /// An input is in a format this place does not take.
    UnsupportedFormat,
    /// No valid session or token.
    Unauthenticated,
    /// Authenticated, but this role or origin may not do this.
    PermissionDenied,
    /// No such thing, or not the caller's (the two are never told apart).
    NotFound,
    /// There is no such operation here (a method on a path).
    Unimplemented,
    /// The state of things does not allow it now (a taken address, an offline camera, a
    /// request already accepted).
    FailedPrecondition,
    /// A device (a camera) refused what was asked of it, or an upload is not what it says.
    Rejected,
    /// A limit of rate or count is reached; retry later.
    ResourceExhausted,
    /// The relay's disk is full: nothing new can be stored until room is made.
    StorageFull,
    /// Something the relay waited for (a request's body) did not come in time.
    DeadlineExceeded,
    /// Something the request needs (a camera, its agent, the database) did not answer in
    /// time.
    Unavailable,
    /// A fault on our side; details go to the log, never to the client.
    Internal,
}

/// A relay error; see the module's documentation.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
    /// What exactly went wrong, for clients that say it in their own words (the web pages,
    /// in the customer's language); without one, the kind's own code.
    code: Option<&'static str>,
    retry_after: Option<Duration>,
    /// What caused it, for the log.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
            code: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Names this error for clients (`snake_case`, documented in api.md).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The code given with [`Error::with_code`], if any.
    pub fn given_code(&self) -> Option<&'static str> {
        self.code
    }

    /// Keeps `cause` as what caused this error (logged, never told the client).
    pub fn with_source(
        mut self,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(cause.into());
        self
    }

    /// The message and every cause after it, `msg: cause: cause…`, for the log.
    pub fn chain(&self) -> String {
        let mut out = self.msg.clone();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }

    /// How long the client should wait before trying again, if it should.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.retry_after
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, msg)
    }

    pub fn not_found(what: &str) -> Self {
        Error::new(ErrorKind::NotFound, format!("no such {what}"))
    }

    pub fn unauthenticated() -> Self {
        Error::new(ErrorKind::Unauthenticated, "login required")
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::PermissionDenied, msg)
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, msg)
    }

    /// Asks the client to wait `retry_after` before trying again.
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    pub fn too_many_requests(retry_after: Duration) -> Self {
        Error::new(
            ErrorKind::ResourceExhausted,
            "too many failed attempts; try again later",
        )
        .with_code("login_throttled")
        .retry_after(retry_after)
    }
}

impl From<eyeward::Error> for Error {
    fn from(e: eyeward::Error) -> Self {
        Error::bad_request(e.to_string()).with_code("invalid_input")
    }
}

/// How long a client should wait after the disk was full or the database busy.
const FULL_RETRY: Duration = Duration::from_secs(30);
const BUSY_RETRY: Duration = Duration::from_secs(2);

impl Error {
    /// The disk is full: a 507 the client retries later; what was stored stays.
    fn disk_full(what: &str) -> Error {
        Error::new(
            ErrorKind::StorageFull,
            format!("the relay's disk is full: {what} was not stored; try again later"),
        )
        .retry_after(FULL_RETRY)
    }

    /// A failed write of `what` (a snapshot, a mail): a full disk is the client's 507 to
    /// retry, anything else our fault.
    pub fn storage(what: &str, e: &std::io::Error) -> Error {
        const ENOSPC: i32 = 28;
        const EDQUOT: i32 = 122;
        if e.kind() == std::io::ErrorKind::StorageFull
            || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
        {
            Error::disk_full(what)
        } else {
            Error::internal(format!("cannot store {what}"))
                .with_source(std::io::Error::new(e.kind(), e.to_string()))
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match database_fault(&e) {
            Some(DatabaseFault::Full) => Error::disk_full("the change"),
            Some(DatabaseFault::Busy) => Error::new(
                ErrorKind::Unavailable,
                "the relay's database is busy; try again shortly",
            )
            .retry_after(BUSY_RETRY)
            .with_source(e),
            Some(DatabaseFault::Unreachable) => Error::new(
                ErrorKind::Unavailable,
                "the relay's database cannot be reached; try again shortly",
            )
            .retry_after(BUSY_RETRY)
            .with_source(e),
            None => Error::internal("database").with_source(e),
        }
    }
}

/// What a database error means for the request that met it, beyond "our fault".
#[derive(Debug, PartialEq, Eq)]
enum DatabaseFault {
    /// No room for the change.
    Full,
    /// Another change, a timeout or a lock was in the way: the same request may pass soon.
    Busy,
    /// The server is down, restarting or unreachable; the pool reconnects by itself.
    Unreachable,
}

fn database_fault(e: &sqlx::Error) -> Option<DatabaseFault> {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                postgres_fault(&code)
            } else {
                code.parse::<u32>().ok().and_then(sqlite_fault)
            }
        }
        sqlx::Error::PoolTimedOut => Some(DatabaseFault::Busy),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
            Some(DatabaseFault::Unreachable)
        }
        _ => None,
    }
}

/// SQLite's result codes, by their primary code (the low byte of the extended ones).
fn sqlite_fault(code: u32) -> Option<DatabaseFault> {
    const SQLITE_BUSY: u32 = 5;
    const SQLITE_LOCKED: u32 = 6;
    const SQLITE_FULL: u32 = 13;
    match code & 0xff {
        SQLITE_FULL => Some(DatabaseFault::Full),
        SQLITE_BUSY | SQLITE_LOCKED => Some(DatabaseFault::Busy),
        _ => None,
    }
}

/// PostgreSQL's SQLSTATEs (appendix A of its manual).
fn postgres_fault(sqlstate: &str) -> Option<DatabaseFault> {
    match sqlstate {
        // disk_full, insufficient_resources, out_of_memory
        "53100" | "53000" | "53200" => Some(DatabaseFault::Full),
        // serialization_failure, deadlock_detected, lock_not_available, query_canceled (the
        // statement timeout), too_many_connections
        "40001" | "40P01" | "55P03" | "57014" | "53300" => Some(DatabaseFault::Busy),
        // admin_shutdown, crash_shutdown, cannot_connect_now, read_only_sql_transaction (a
        // standby during failover), and class 08: connection exceptions
        "57P01" | "57P02" | "57P03" | "25006" => Some(DatabaseFault::Unreachable),
        s if s.starts_with("08") => Some(DatabaseFault::Unreachable),
        _ => None,
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::internal("database migration").with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_to_retry_and_other_write_faults_are_ours_with_their_cause() {
        let full = Error::storage("the snapshot", &std::io::Error::from_raw_os_error(28));
        assert_eq!(full.kind(), ErrorKind::StorageFull);
        assert_eq!(full.retry_after, Some(FULL_RETRY));
        assert!(full.to_string().contains("disk is full"), "{full}");
        let denied = Error::storage("the snapshot", &std::io::Error::from_raw_os_error(13));
        assert_eq!(denied.kind(), ErrorKind::Internal);
        assert_eq!(denied.to_string(), "cannot store the snapshot");
        assert!(
            denied
                .chain()
                .starts_with("cannot store the snapshot: Permission denied"),
            "{}",
            denied.chain()
        );
        let busy = Error::from(sqlx::Error::PoolTimedOut);
        assert_eq!(busy.kind(), ErrorKind::Unavailable);
        assert_eq!(busy.retry_after, Some(BUSY_RETRY));
        let down = Error::from(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert_eq!(down.kind(), ErrorKind::Unavailable);
        assert_eq!(down.retry_after, Some(BUSY_RETRY));
        let broken = Error::from(sqlx::Error::RowNotFound);
        assert_eq!(broken.to_string(), "database");
        assert!(
            broken.chain().starts_with("database: "),
            "{}",
            broken.chain()
        );
    }

    #[test]
    fn each_backends_codes_say_full_busy_or_unreachable_and_the_rest_is_ours() {
        assert_eq!(sqlite_fault(13), Some(DatabaseFault::Full));
        assert_eq!(sqlite_fault(5), Some(DatabaseFault::Busy));
        assert_eq!(sqlite_fault(6 | (1 << 8)), Some(DatabaseFault::Busy));
        // A constraint (19) is a bug or a conflict handled where it happens.
        assert_eq!(sqlite_fault(19), None);
        assert_eq!(postgres_fault("53100"), Some(DatabaseFault::Full));
        for busy in ["40001", "40P01", "55P03", "57014", "53300"] {
            assert_eq!(postgres_fault(busy), Some(DatabaseFault::Busy), "{busy}");
        }
        for down in ["57P01", "57P02", "57P03", "25006", "08006", "08001"] {
            assert_eq!(
                postgres_fault(down),
                Some(DatabaseFault::Unreachable),
                "{down}"
            );
        }
        for ours in ["23505", "23514", "42P01", "P0001"] {
            assert_eq!(postgres_fault(ours), None, "{ours}");
        }
    }
}

//! How hard Strato's durable stores try to reach the disk before they
//! acknowledge a write. One server-wide setting (`strato serve --durability`)
//! covers every store that acknowledges a client's data: the queue engine
//! (async invokes, SQS, SNS and EventBridge deliveries), DynamoDB tables and
//! S3 object contents.

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync every commit (SQLite `synchronous=FULL`, `fdatasync` of object
    /// files): an acknowledged write survives power loss.
    Fsync,
    /// Written to the operating system before the answer, not forced to the
    /// disk (SQLite WAL with `synchronous=NORMAL`, object files without
    /// `fdatasync`): an acknowledged write survives `kill -9` of the server,
    /// not a power loss.
    ProcessCrash,
}

impl Durability {
    /// SQLite's `synchronous` setting (in WAL mode) that commits this way:
    /// `FULL` fsyncs every commit, `NORMAL` writes it to the OS and syncs
    /// only at checkpoints.
    pub fn sqlite_synchronous(self) -> &'static str {
        match self {
            Durability::Fsync => "FULL",
            Durability::ProcessCrash => "NORMAL",
        }
    }

    /// The names `--durability` takes.
    pub const NAMES: [&'static str; 2] = ["fsync", "process-crash"];

    /// The setting a `--durability` name stands for.
    pub fn from_name(name: &str) -> Option<Durability> {
        match name {
            "fsync" => Some(Durability::Fsync),
            "process-crash" => Some(Durability::ProcessCrash),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_stands_for_a_setting() {
        assert_eq!(Durability::from_name("fsync"), Some(Durability::Fsync));
        assert_eq!(
            Durability::from_name("process-crash"),
            Some(Durability::ProcessCrash)
        );
        assert!(Durability::NAMES
            .iter()
            .all(|n| Durability::from_name(n).is_some()));
        assert_eq!(Durability::from_name("none"), None);
    }
}

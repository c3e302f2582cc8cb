//! The crate's error type.

/// What can go wrong with the backplane.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackplaneError {
    /// The Redis URL could not be parsed.
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (without its password).
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid backplane configuration: {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// Redis refused a command or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis held something this crate did not write (a malformed message or reply).
    #[error("unexpected data in Redis: {0}")]
    Protocol(String),
    /// A partition number out of range of the [`StreamLog`](crate::StreamLog).
    #[error("partition {partition} does not exist: the log has partitions 0 to {} ({partitions} in all)", partitions.saturating_sub(1))]
    InvalidPartition {
        /// The partition asked for.
        partition: u32,
        /// How many partitions the log has.
        partitions: u32,
    },
    /// An argument of a call was refused (the message says what it must be).
    #[error("invalid argument {argument}: {reason}")]
    InvalidArgument {
        /// The argument.
        argument: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// Redis did not answer in time.
    #[error("redis did not answer within {after:?}")]
    Timeout {
        /// How long the call waited.
        after: std::time::Duration,
    },
}

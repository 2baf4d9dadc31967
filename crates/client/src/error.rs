//! Errors of the client: one variant per ZooKeeper error code (KeeperException.Code), plus the
//! two things a ZooKeeper server cannot report: a bad argument caught before sending, and a
//! code this client does not know.

use jute::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("SystemError")]
    SystemError,
    #[error("RuntimeInconsistency")]
    RuntimeInconsistency,
    #[error("DataInconsistency")]
    DataInconsistency,
    #[error("ConnectionLoss")]
    ConnectionLoss,
    #[error("MarshallingError")]
    MarshallingError,
    #[error("Unimplemented")]
    Unimplemented,
    #[error("OperationTimeout")]
    OperationTimeout,
    #[error("BadArguments")]
    BadArguments,
    #[error("UnknownSession")]
    UnknownSession,
    /// No quorum of the proposed configuration was connected and up to date. `hint` says
    /// what to do when the cause is known (an observer asked to become a participant).
    #[error("NewConfigNoQuorum{}", hint.as_ref().map(|h| format!(": {h}")).unwrap_or_default())]
    NewConfigNoQuorum { hint: Option<String> },
    #[error("ReconfigInProgress")]
    ReconfigInProgress,
    #[error("APIError")]
    ApiError,
    #[error("NoNode")]
    NoNode,
    #[error("NoAuth")]
    NoAuth,
    #[error("BadVersion")]
    BadVersion,
    #[error("NoChildrenForEphemerals")]
    NoChildrenForEphemerals,
    #[error("NodeExists")]
    NodeExists,
    #[error("Directory not empty")]
    NotEmpty,
    #[error("Session expired")]
    SessionExpired,
    #[error("Invalid callback")]
    InvalidCallback,
    #[error("InvalidACL")]
    InvalidAcl,
    #[error("AuthFailed")]
    AuthFailed,
    #[error("Session moved")]
    SessionMoved,
    #[error("Not a read-only call")]
    NotReadOnly,
    #[error("Ephemeral node on local session")]
    EphemeralOnLocalSession,
    #[error("No such watcher")]
    NoWatcher,
    #[error("Request timeout")]
    RequestTimeout,
    #[error("Reconfig is disabled")]
    ReconfigDisabled,
    #[error("Session closed because client failed to authenticate")]
    SessionClosedRequireSaslAuth,
    #[error("Quota has exceeded")]
    QuotaExceeded,
    #[error("Op throttled due to high load")]
    Throttled,
    /// Rejected by the client before sending (Java throws IllegalArgumentException).
    #[error("{0}")]
    InvalidArgument(String),
    /// A code this client does not know.
    #[error("Unknown error {0}")]
    UnknownCode(i32),
}

impl Error {
    /// The error for a non-zero ReplyHeader.err.
    pub fn from_code(code: i32) -> Error {
        use ErrorCode as C;
        match ErrorCode::from_code(code) {
            Some(C::SystemError) => Error::SystemError,
            Some(C::RuntimeInconsistency) => Error::RuntimeInconsistency,
            Some(C::DataInconsistency) => Error::DataInconsistency,
            Some(C::ConnectionLoss) => Error::ConnectionLoss,
            Some(C::MarshallingError) => Error::MarshallingError,
            Some(C::Unimplemented) => Error::Unimplemented,
            Some(C::OperationTimeout) => Error::OperationTimeout,
            Some(C::BadArguments) => Error::BadArguments,
            Some(C::UnknownSession) => Error::UnknownSession,
            Some(C::NewConfigNoQuorum) => Error::NewConfigNoQuorum { hint: None },
            Some(C::ReconfigInProgress) => Error::ReconfigInProgress,
            Some(C::ApiError) => Error::ApiError,
            Some(C::NoNode) => Error::NoNode,
            Some(C::NoAuth) => Error::NoAuth,
            Some(C::BadVersion) => Error::BadVersion,
            Some(C::NoChildrenForEphemerals) => Error::NoChildrenForEphemerals,
            Some(C::NodeExists) => Error::NodeExists,
            Some(C::NotEmpty) => Error::NotEmpty,
            Some(C::SessionExpired) => Error::SessionExpired,
            Some(C::InvalidCallback) => Error::InvalidCallback,
            Some(C::InvalidAcl) => Error::InvalidAcl,
            Some(C::AuthFailed) => Error::AuthFailed,
            Some(C::SessionMoved) => Error::SessionMoved,
            Some(C::NotReadOnly) => Error::NotReadOnly,
            Some(C::EphemeralOnLocalSession) => Error::EphemeralOnLocalSession,
            Some(C::NoWatcher) => Error::NoWatcher,
            Some(C::RequestTimeout) => Error::RequestTimeout,
            Some(C::ReconfigDisabled) => Error::ReconfigDisabled,
            Some(C::SessionClosedRequireSaslAuth) => Error::SessionClosedRequireSaslAuth,
            Some(C::QuotaExceeded) => Error::QuotaExceeded,
            Some(C::Throttled) => Error::Throttled,
            Some(C::Ok) | None => Error::UnknownCode(code),
        }
    }

    /// ZooKeeper's code for this error (BadArguments for a client-side argument error).
    pub fn code(&self) -> i32 {
        use ErrorCode as C;
        let c = match self {
            Error::SystemError => C::SystemError,
            Error::RuntimeInconsistency => C::RuntimeInconsistency,
            Error::DataInconsistency => C::DataInconsistency,
            Error::ConnectionLoss => C::ConnectionLoss,
            Error::MarshallingError => C::MarshallingError,
            Error::Unimplemented => C::Unimplemented,
            Error::OperationTimeout => C::OperationTimeout,
            Error::BadArguments | Error::InvalidArgument(_) => C::BadArguments,
            Error::UnknownSession => C::UnknownSession,
            Error::NewConfigNoQuorum { .. } => C::NewConfigNoQuorum,
            Error::ReconfigInProgress => C::ReconfigInProgress,
            Error::ApiError => C::ApiError,
            Error::NoNode => C::NoNode,
            Error::NoAuth => C::NoAuth,
            Error::BadVersion => C::BadVersion,
            Error::NoChildrenForEphemerals => C::NoChildrenForEphemerals,
            Error::NodeExists => C::NodeExists,
            Error::NotEmpty => C::NotEmpty,
            Error::SessionExpired => C::SessionExpired,
            Error::InvalidCallback => C::InvalidCallback,
            Error::InvalidAcl => C::InvalidAcl,
            Error::AuthFailed => C::AuthFailed,
            Error::SessionMoved => C::SessionMoved,
            Error::NotReadOnly => C::NotReadOnly,
            Error::EphemeralOnLocalSession => C::EphemeralOnLocalSession,
            Error::NoWatcher => C::NoWatcher,
            Error::RequestTimeout => C::RequestTimeout,
            Error::ReconfigDisabled => C::ReconfigDisabled,
            Error::SessionClosedRequireSaslAuth => C::SessionClosedRequireSaslAuth,
            Error::QuotaExceeded => C::QuotaExceeded,
            Error::Throttled => C::Throttled,
            Error::UnknownCode(c) => return *c,
        };
        c.code()
    }

    /// KeeperException's message: "KeeperErrorCode = NoNode for /a".
    pub fn keeper_message(&self, path: Option<&str>) -> String {
        match path {
            Some(p) => format!("KeeperErrorCode = {self} for {p}"),
            None => format!("KeeperErrorCode = {self}"),
        }
    }
}

impl From<jute::JuteError> for Error {
    fn from(_: jute::JuteError) -> Self {
        Error::MarshallingError
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_one_to_one() {
        for code in [
            -1, -2, -3, -4, -5, -6, -7, -8, -12, -13, -14, -100, -101, -102, -103, -108, -110,
            -111, -112, -113, -114, -115, -118, -119, -120, -121, -122, -123, -124, -125, -127,
        ] {
            let e = Error::from_code(code);
            assert!(!matches!(e, Error::UnknownCode(_)), "{code}");
            assert_eq!(e.code(), code);
        }
        assert_eq!(Error::from_code(-999), Error::UnknownCode(-999));
        assert_eq!(Error::from_code(-999).code(), -999);
    }
}

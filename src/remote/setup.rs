//! Connecting, and the streams and bucket a prefix names on the server.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, object_store, stream};

use super::error::RemoteError;
use super::wire::valid_id;

/// How long results stay on the server.
const RESULTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// How to log in: the operator's credentials, never a request's.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Credentials {
    /// None.
    #[default]
    None,
    /// A NATS `.creds` file.
    File(PathBuf),
    /// A user and password.
    UserPassword(String, String),
}

impl Credentials {
    /// The client's connect options that log in with these credentials
    /// (for [`Nats::connect_with`](crate::nats::Nats::connect_with) too).
    ///
    /// # Errors
    /// [`RemoteError::Credentials`] for a credentials file that cannot be read.
    pub async fn connect_options(&self) -> Result<async_nats::ConnectOptions, RemoteError> {
        Ok(match self {
            Credentials::File(f) => async_nats::ConnectOptions::with_credentials_file(f)
                .await
                .map_err(|source| RemoteError::Credentials {
                    path: f.clone(),
                    source,
                })?,
            Credentials::UserPassword(u, p) => {
                async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone())
            }
            Credentials::None => async_nats::ConnectOptions::new(),
        })
    }

    /// `$SUBINTERP_NATS_CREDS` (a file), else `$SUBINTERP_NATS_USER` and
    /// `$SUBINTERP_NATS_PASSWORD`, else none.
    pub fn from_env() -> Credentials {
        let user = std::env::var("SUBINTERP_NATS_USER").ok();
        let password = std::env::var("SUBINTERP_NATS_PASSWORD").ok();
        match (std::env::var_os("SUBINTERP_NATS_CREDS"), user, password) {
            (Some(f), _, _) => Credentials::File(f.into()),
            (None, Some(u), Some(p)) => Credentials::UserPassword(u, p),
            _ => Credentials::None,
        }
    }
}

/// Where remote runs go on a server, and how to log in.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    prefix: String,
    credentials: Credentials,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions::new()
    }
}

impl RemoteOptions {
    /// The prefix `subinterp`, credentials from the environment
    /// ([`Credentials::from_env`]).
    pub fn new() -> RemoteOptions {
        RemoteOptions {
            prefix: "subinterp".into(),
            credentials: Credentials::from_env(),
        }
    }

    /// The subject prefix that names the work queue, its streams and the
    /// modules bucket: 1 to 64 of `[A-Za-z0-9_-]`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How to log in.
    pub fn credentials(mut self, c: Credentials) -> Self {
        self.credentials = c;
        self
    }

    /// The subjects of the prefix.
    ///
    /// # Errors
    /// [`RemoteError::InvalidRequest`] for a prefix that is not 1 to 64 of
    /// `[A-Za-z0-9_-]`.
    pub fn subjects(&self) -> Result<Subjects, RemoteError> {
        if !valid_id(&self.prefix) {
            return Err(RemoteError::InvalidRequest(format!(
                "the subject prefix wants 1 to 64 of A-Z a-z 0-9 _ -, got {:?}",
                self.prefix
            )));
        }
        Ok(Subjects {
            prefix: self.prefix.clone(),
        })
    }
}

/// Connects to `url` with `options`' credentials.
///
/// # Errors
/// [`RemoteError::Credentials`] for a credentials file that cannot be read,
/// [`RemoteError::Connect`] when the server cannot be reached or refuses.
pub async fn connect(
    url: &str,
    options: &RemoteOptions,
) -> Result<async_nats::Client, RemoteError> {
    let o = options.credentials.connect_options().await?;
    o.name("subinterp")
        .connect(url)
        .await
        .map_err(|e| RemoteError::Connect {
            url: url.to_string(),
            source: e.into(),
        })
}

/// Subject, stream and bucket names under a prefix.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// `S.run`: requests.
    pub fn run(&self) -> String {
        format!("{}.run", self.prefix)
    }
    /// `S.result.ID`: the result of `id`.
    pub fn result(&self, id: &str) -> String {
        format!("{}.result.{id}", self.prefix)
    }
    /// `S.result.*`: every result.
    pub fn results(&self) -> String {
        format!("{}.result.*", self.prefix)
    }
    /// `S-runs`: the work-queue stream.
    pub fn runs_stream(&self) -> String {
        format!("{}-runs", self.prefix)
    }
    /// `S-results`: the results stream.
    pub fn results_stream(&self) -> String {
        format!("{}-results", self.prefix)
    }
    /// `S-workers`: the workers' durable consumer.
    pub fn workers(&self) -> String {
        format!("{}-workers", self.prefix)
    }
    /// `S-modules`: the object store bucket of wasm modules, by SHA-256.
    pub fn modules_bucket(&self) -> String {
        format!("{}-modules", self.prefix)
    }
}

/// Makes (or finds) the runs and results streams.
///
/// # Errors
/// [`RemoteError::Server`] when the server refuses (no JetStream, another
/// stream of that name with another configuration).
pub async fn streams(
    js: &jetstream::Context,
    s: &Subjects,
) -> Result<(stream::Stream, stream::Stream), RemoteError> {
    let runs = js
        .get_or_create_stream(stream::Config {
            name: s.runs_stream(),
            subjects: vec![s.run()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| RemoteError::server("making the runs stream", e))?;
    let results = js
        .get_or_create_stream(stream::Config {
            name: s.results_stream(),
            subjects: vec![s.results()],
            storage: stream::StorageType::File,
            max_age: RESULTS_MAX_AGE,
            max_messages_per_subject: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| RemoteError::server("making the results stream", e))?;
    Ok((runs, results))
}

/// The bucket of wasm modules (made on first use; kept until deleted).
///
/// # Errors
/// [`RemoteError::Server`] when it can be neither found nor made.
pub async fn modules_bucket(
    js: &jetstream::Context,
    s: &Subjects,
) -> Result<object_store::ObjectStore, RemoteError> {
    let bucket = s.modules_bucket();
    if let Ok(store) = js.get_object_store(&bucket).await {
        return Ok(store);
    }
    js.create_object_store(object_store::Config {
        bucket,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| RemoteError::server("making the modules bucket", e))
}

//! The settings of the dashboard's accounts: `PAYGATE_SECRET_KEY`, the key that encrypts
//! secrets kept in the database (the users' TOTP secrets), and the SMTP server that mails team
//! invitations.

/// The settings of the dashboard's accounts (flattened into the others).
#[derive(clap::Args, Clone, Debug)]
pub struct AccountSettings {
    /// The key that encrypts the dashboard users' TOTP secrets: 64 hex digits (32 random bytes,
    /// `openssl rand -hex 32`). Required in production; in development a public development key
    /// is used without it.
    #[arg(
        long,
        env = "PAYGATE_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<String>,
    /// Mail team invitations through this SMTP server (`smtp://user:pass@host:587?tls=required`,
    /// `smtps://…`, or `smtp://host:25` for a local relay); without it the dashboard shows the
    /// link to pass on.
    #[arg(long, env = "SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of team invitations.
    #[arg(
        long,
        env = "SMTP_FROM",
        default_value = "paygate <no-reply@localhost>",
        global = true
    )]
    pub smtp_from: String,
}

impl AccountSettings {
    /// `(SMTP_URL, SMTP_FROM)` when mail is configured.
    pub(super) fn smtp(&self) -> Option<(String, String)> {
        let url = self
            .smtp_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())?;
        Some((url.to_owned(), self.smtp_from.clone()))
    }
}

/// The 32-byte key of `PAYGATE_SECRET_KEY`; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(pub [u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// The key used in development without `PAYGATE_SECRET_KEY`: public (it is this text's
    /// SHA-256), so it protects nothing; production refuses to start without a key of its own.
    pub fn development() -> Self {
        Self(<sha2::Sha256 as sha2::Digest>::digest(b"paygate development secret key").into())
    }

    /// Reads `PAYGATE_SECRET_KEY` (64 hex digits).
    pub(super) fn from_setting(value: Option<&str>, production: bool) -> Result<Self, String> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => {
                let bytes = hex::decode(v).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
                bytes.map(Self).ok_or_else(|| {
                    "PAYGATE_SECRET_KEY must be 64 hex digits (32 random bytes: openssl rand -hex 32)"
                        .into()
                })
            }
            None if production => Err(
                "PAYGATE_SECRET_KEY is required with PAYGATE_ENV=production (64 hex digits: openssl rand -hex 32)"
                    .into(),
            ),
            None => Ok(Self::development()),
        }
    }
}

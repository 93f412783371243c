//! Email (an adapter): invitations to a merchant's team, sent through the SMTP server of
//! `SMTP_URL` with `lettre` (`smtp://user:pass@host:587?tls=required` for STARTTLS,
//! `smtps://…` for TLS from the start, plain `smtp://host:port` for a local relay). Without
//! `SMTP_URL` nothing is mailed: the dashboard shows the link to pass on by hand.
//!
//! An invitation's link carries its token: the message is built here and handed to the server;
//! neither the link nor the message reaches a log line (a failure logs only its cause).

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::header::ContentType,
};

/// How long sending one message may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends mail through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Mailer {
    /// A mailer for `url` (`SMTP_URL`) sending as `from` (`SMTP_FROM`).
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP_URL: {e}"))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = from.parse().map_err(|e| {
            format!("SMTP_FROM must be an address like paygate <no-reply@example.com>: {e}")
        })?;
        Ok(Self { transport, from })
    }

    /// Mails `to` the invitation to `merchant`'s team as `role`, with its `link`.
    pub async fn invitation(
        &self,
        to: &str,
        merchant: &str,
        role: &str,
        link: &str,
    ) -> Result<(), String> {
        let to = to.parse().map_err(|e| format!("{e}"))?;
        let body = format!(
            "You are invited to join {merchant} on paygate as {role}.\r\n\r\n\
             Open this link to choose your name and password (it works once, for 72 hours):\r\n\r\n\
             {link}\r\n\r\nIf you did not expect this, ignore this message.\r\n"
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("Join {merchant} on paygate"))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("{e}"))?;
        tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message))
            .await
            .map_err(|_| "the SMTP server did not answer in time".to_owned())?
            .map(|_| ())
            .map_err(|e| format!("{e}"))
    }
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer(..)")
    }
}

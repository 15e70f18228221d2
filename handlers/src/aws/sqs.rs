//! Amazon SQS adapter of the analytics dead-letter port ([`DeadLetters`]): one `SendMessage` per
//! record set aside, its body the [`DeadLetter`] as JSON (coordinates and reason, never the
//! record's content).

use async_trait::async_trait;
use aws_config::SdkConfig;
use connect_events_core::analytics::stream::{DeadLetter, DeadLetters};
use connect_events_core::PortError;

use super::port_error;

const SERVICE: &str = "sqs";

/// The dead-letter queue `queue_url`.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(config: &SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::from_client(aws_sdk_sqs::Client::new(config), queue_url)
    }

    pub fn from_client(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsDeadLetters {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn send(&self, letter: &DeadLetter) -> Result<(), PortError> {
        let body = serde_json::json!({
            "kind": "analytics-record",
            "source": letter.source,
            "record": letter.record,
            "reason": letter.reason,
        });
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error(SERVICE, "SendMessage", e))
    }
}

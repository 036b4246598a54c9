//! The product's [`SecuritySink`] seam, implemented by the senders here, so the monitoring loop
//! can forward without knowing where to.

use zf_audit::{Alert, SecuritySink, StoredEvent};

use crate::{SyslogTlsSender, Webhooks};

impl SecuritySink for SyslogTlsSender {
    fn event(&self, event: &StoredEvent) {
        self.send_event(event);
    }

    fn alert(&self, alert: &Alert) {
        self.send_alert(alert);
    }
}

/// Chat robots get alerts only; every event would drown a group chat.
pub struct WebhookSink(pub std::sync::Arc<Webhooks>);

impl SecuritySink for WebhookSink {
    fn event(&self, _: &StoredEvent) {}

    fn alert(&self, alert: &Alert) {
        let hooks = self.0.clone();
        let alert = alert.clone();
        // Delivery retries with back-off; the monitor must not wait for it.
        tokio::spawn(async move {
            for result in hooks.send_alert(&alert).await {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "alert webhook failed");
                }
            }
        });
    }
}

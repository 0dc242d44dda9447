//! 103 Early Hints (RFC 8297) from an HTTP/1.1 origin, passed on to the viewer while the
//! final response is still coming: the viewer's protocol layer puts an [`EarlyHints`] sink
//! into the request's extensions when it can send interim responses (HTTP/3; hyper's
//! HTTP/1.1 and HTTP/2 servers cannot), and the origin request of that viewer's fill or
//! pass-through reports each 103 to it. A 103 is never cached and never the answer.

use http::{HeaderMap, StatusCode};
use tokio::sync::mpsc;

/// Where a viewer's 103 header blocks go.
#[derive(Clone, Debug)]
pub struct EarlyHints(mpsc::UnboundedSender<HeaderMap>);

impl EarlyHints {
    /// A sink and the viewer side's receiver of the header blocks.
    pub fn channel() -> (EarlyHints, mpsc::UnboundedReceiver<HeaderMap>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (EarlyHints(sender), receiver)
    }

    /// Reports `request`'s 103 responses from the origin (HTTP/1.1 origins only: hyper's
    /// client reports interim responses there).
    pub fn watch<B>(&self, request: &mut http::Request<B>) {
        let sender = self.0.clone();
        hyper::ext::on_informational(request, move |response| {
            if response.status() == StatusCode::EARLY_HINTS {
                let mut headers = response.headers().clone();
                super::forward::strip_hop_by_hop(&mut headers);
                // A viewer already answered has dropped its receiver: nothing to tell.
                let _ = sender.send(headers);
            }
        });
    }
}

//! The thread behind a lab's views: the UI sends requests (the newest replaces any still waiting), the thread
//! answers with plain-data results and asks for a repaint after each. Used by the BNN and VAE views.

use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

/// A named thread that handles the newest request; dropping the handle stops and joins it.
pub struct ViewThread<Req, Res> {
    requests: Option<Sender<Req>>,
    results: Receiver<Res>,
    thread: Option<JoinHandle<()>>,
}

impl<Req: Send + 'static, Res: Send + 'static> ViewThread<Req, Res> {
    /// Starts the thread `name`. For each request (only the newest of a burst), `work(request, send)` runs;
    /// every `send(result)` hands a result to the UI and calls `repaint`.
    pub fn spawn(
        name: &str,
        repaint: impl Fn() + Send + 'static,
        mut work: impl FnMut(Req, &dyn Fn(Res)) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (req_tx, req_rx): (Sender<Req>, Receiver<Req>) = channel();
        let (res_tx, res_rx) = channel();
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let send = |result: Res| {
                let _ = res_tx.send(result);
                repaint();
            };
            loop {
                let Ok(mut request) = req_rx.recv() else { return };
                loop {
                    match req_rx.try_recv() {
                        Ok(r) => request = r,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return,
                    }
                }
                work(request, &send);
            }
        })?;
        Ok(Self { requests: Some(req_tx), results: res_rx, thread: Some(thread) })
    }

    /// Asks for work; replaces anything still waiting.
    pub fn request(&self, request: Req) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(request);
        }
    }

    /// Results that arrived since the last call.
    #[must_use]
    pub fn drain(&self) -> Vec<Res> {
        self.results.try_iter().collect()
    }
}

impl<Req, Res> Drop for ViewThread<Req, Res> {
    fn drop(&mut self) {
        self.requests = None; // closes the channel; the loop ends after its current request
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

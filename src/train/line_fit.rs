//! Fitting the lecture's 1-D flow to a column, on a thread of its own (`models::flow::line`): the UI asks for a
//! fit of so many steps from a spline, the thread sends the spline as it learns, a few times a second, so the
//! picture moves while it trains. Asking again, or [`LineFitJob::stop`], ends the fit under way at its next step;
//! [`LineFitJob::abandon`] ends it and drops what it still sends (its data is no longer the one on show).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::models::flow::line::{LineFit, MonotoneSpline};
use crate::train::view_thread::ViewThread;

/// How often the thread sends the spline while it learns.
const SEND_EVERY: Duration = Duration::from_millis(40);

/// What the UI asks: fit `start` to `data` in `steps` Adam steps of `learning_rate`.
#[derive(Clone, Debug)]
pub struct FitRequest {
    /// The points of the column, as the picture's x.
    pub data: Arc<Vec<f64>>,
    /// The spline to start from (the one on show).
    pub start: MonotoneSpline,
    /// Adam steps to take.
    pub steps: u64,
    /// Adam's learning rate.
    pub learning_rate: f64,
}

/// Where a fit stands.
#[derive(Clone, Debug)]
pub struct FitProgress {
    /// The spline after `step` steps.
    pub spline: MonotoneSpline,
    /// Steps taken.
    pub step: u64,
    /// The steps asked for.
    pub steps: u64,
    /// The negative log-likelihood per point of the last step's spline, in nats.
    pub nll: f64,
    /// The fit ended: all its steps taken, stopped, or failed.
    pub done: bool,
    /// Why it ended early, when the loss was not a number.
    pub error: Option<String>,
}

/// The fitting thread. Dropping it stops the fit under way and joins the thread.
pub struct LineFitJob {
    current: Arc<AtomicU64>,
    next: u64,
    /// Progress of fits numbered below this is dropped: they were abandoned.
    shown_from: u64,
    thread: ViewThread<(u64, FitRequest), (u64, FitProgress)>,
}

impl LineFitJob {
    /// Starts the thread; `repaint` is called after each progress it sends.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn spawn(repaint: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let current = Arc::new(AtomicU64::new(0));
        let live = Arc::clone(&current);
        let thread = ViewThread::spawn("line-fit", repaint, move |(id, request): (u64, FitRequest), send| {
            fit(&request, || live.load(Ordering::Relaxed) == id, &|progress| send((id, progress)));
        })?;
        Ok(Self { current, next: 0, shown_from: 0, thread })
    }

    /// Fits as `request` asks, ending any fit under way.
    pub fn start(&mut self, request: FitRequest) {
        self.next += 1;
        self.current.store(self.next, Ordering::Relaxed);
        self.thread.request((self.next, request));
    }

    /// Ends the fit under way after its current step (it sends its last progress, done).
    pub fn stop(&mut self) {
        self.next += 1;
        self.current.store(self.next, Ordering::Relaxed);
    }

    /// Ends the fit under way, as [`Self::stop`], and drops whatever it still sends: [`Self::poll`] gives only fits
    /// asked for after this.
    pub fn abandon(&mut self) {
        self.stop();
        self.shown_from = self.next;
    }

    /// The newest progress since the last call, if any, of a fit not abandoned.
    #[must_use]
    pub fn poll(&self) -> Option<FitProgress> {
        let shown_from = self.shown_from;
        self.thread.drain().into_iter().filter(|(id, _)| *id >= shown_from).map(|(_, progress)| progress).next_back()
    }
}

impl Drop for LineFitJob {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The fit itself: steps while `live()`, sending the spline every [`SEND_EVERY`] and at the end.
fn fit(request: &FitRequest, live: impl Fn() -> bool, send: &dyn Fn(FitProgress)) {
    let mut fit = LineFit::new(&request.start, request.learning_rate);
    let mut last_send = Instant::now();
    let mut nll = request.start.nll(&request.data);
    let progress = |fit: &LineFit, nll: f64, done: bool, error: Option<String>| FitProgress {
        spline: fit.spline(),
        step: fit.steps(),
        steps: request.steps,
        nll,
        done,
        error,
    };
    while fit.steps() < request.steps && live() {
        if fit.step(&request.data).is_none() {
            let why =
                format!("the log-likelihood was not a number at step {}; the last good f is kept", fit.steps() + 1);
            send(progress(&fit, nll, true, Some(why)));
            return;
        }
        nll = fit.spline().nll(&request.data);
        if last_send.elapsed() >= SEND_EVERY {
            send(progress(&fit, nll, false, None));
            last_send = Instant::now();
        }
    }
    send(progress(&fit, nll, true, None));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls until `done` says so, or panics after 20 s.
    fn poll_until(job: &LineFitJob, done: impl Fn(&FitProgress) -> bool) -> FitProgress {
        let start = Instant::now();
        loop {
            if let Some(progress) = job.poll()
                && done(&progress)
            {
                return progress;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no such progress came");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn request(steps: u64) -> FitRequest {
        let data: Vec<f64> = (0..500).map(|i| (f64::from(i) * 0.37).sin() * 2.0).collect();
        FitRequest { data: Arc::new(data), start: MonotoneSpline::identity(), steps, learning_rate: 0.05 }
    }

    #[test]
    fn a_stopped_fit_sends_its_last_progress_and_an_abandoned_one_sends_nothing_more() {
        let mut job = LineFitJob::spawn(|| {}).expect("a thread");
        // Stopped: its last progress comes, done, short of its steps.
        job.start(request(u64::MAX));
        poll_until(&job, |p| p.step > 0);
        job.stop();
        let last = poll_until(&job, |p| p.done);
        assert!(last.step < last.steps, "stopped early, at step {}", last.step);
        // Abandoned: nothing of it comes, not even its last step.
        job.start(request(u64::MAX));
        poll_until(&job, |p| p.step > 0);
        job.abandon();
        std::thread::sleep(Duration::from_millis(300));
        assert!(job.poll().is_none(), "the abandoned fit's progress is dropped");
        // A fit asked for after it is shown, whole.
        job.start(request(7));
        let next = poll_until(&job, |p| p.done);
        assert_eq!((next.step, next.steps), (7, 7), "the new fit's own progress");
    }
}

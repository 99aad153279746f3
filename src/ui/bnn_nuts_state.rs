//! The state of the BNN lab's "VI vs NUTS" page ([`NutsPageState`]): the sampler's settings, the run under way and
//! its result, and the view's choices. Kept apart from the page (`bnn_nuts.rs`) so that the lab's state holds it
//! without the two files importing each other.

use std::sync::Arc;

use crate::models::nuts::{NutsError, NutsSettings};
use crate::train::nuts_job::{NutsComparison, NutsJob};

/// The page's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NutsSection {
    /// Diagnostics and the summary table.
    Summary,
    /// Both predictive bands over the one feature (a regression on one feature only).
    Bands,
    /// A weight's two marginals and the list by sd ratio.
    Marginals,
    /// The first test rows' intervals.
    Rows,
    /// Coverage against nominal level, both posteriors.
    Calibration,
}

impl NutsSection {
    pub(crate) const ALL: [Self; 5] = [Self::Summary, Self::Bands, Self::Marginals, Self::Rows, Self::Calibration];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Summary => "Diagnostics and summary",
            Self::Bands => "Predictive bands",
            Self::Marginals => "Weight marginals",
            Self::Rows => "Test rows side by side",
            Self::Calibration => "Calibration of both",
        }
    }
}

/// The page's state: the sampler's settings, the run under way, its result and the choices of the views.
pub struct NutsPageState {
    /// Settings of the next sampling run.
    pub settings: NutsSettings,
    /// The section on show.
    pub section: NutsSection,
    /// The run under way.
    pub job: Option<NutsJob>,
    /// The last result.
    pub result: Option<Arc<NutsComparison>>,
    /// What ended the last run without a result ("Cancelled.", an error).
    pub message: Option<String>,
    /// (layer, index) of the weight whose marginals are drawn.
    pub picked: (usize, usize),
    /// The list by sd ratio: largest first (else smallest first).
    pub largest_first: bool,
}

impl Default for NutsPageState {
    /// A quick look: 4 chains of 300 warm-up iterations and 300 draws on at most 500 training rows.
    fn default() -> Self {
        Self {
            settings: NutsSettings { warmup: 300, draws: 300, max_rows: 500, ..NutsSettings::default() },
            section: NutsSection::Summary,
            job: None,
            result: None,
            message: None,
            picked: (0, 0),
            largest_first: false,
        }
    }
}

impl NutsPageState {
    /// Whether a sampling run is under way.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Takes the job's result once it is in.
    pub(crate) fn poll(&mut self) {
        let Some(job) = &self.job else { return };
        let Some(result) = job.try_result() else { return };
        match result {
            Ok(r) => {
                self.message = None;
                if self.result.as_ref().is_none_or(|old| old.template.layers.len() != r.template.layers.len()) {
                    self.picked = (0, 0);
                }
                // On one-feature data the two bands are the lesson: show them first; elsewhere there are none.
                if r.bands.is_some() && self.result.as_ref().is_none_or(|old| old.bands.is_none()) {
                    self.section = NutsSection::Bands;
                } else if r.bands.is_none() && self.section == NutsSection::Bands {
                    self.section = NutsSection::Summary;
                }
                self.result = Some(r);
            }
            Err(NutsError::Cancelled) => self.message = Some("Cancelled: the draws so far were dropped.".into()),
            Err(e) => self.message = Some(format!("NUTS failed: {e}")),
        }
        self.job = None;
    }
}

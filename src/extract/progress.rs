//! Progress per entity: a bar on a terminal, a log line per part otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Progress display shared by the entity readers of one extract.
#[derive(Clone)]
pub struct ExtractProgress {
    multi: Option<MultiProgress>,
}

impl ExtractProgress {
    /// Bars when stderr is a terminal and `enabled`; plain log lines otherwise.
    pub fn new(enabled: bool) -> Self {
        let multi = (enabled && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        ExtractProgress { multi }
    }

    /// Progress of one entity.
    pub fn entity(&self, name: &'static str) -> EntityProgress {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix:<22} {pos:>9} rows  {msg}  {per_sec} {elapsed}",
                )
                .expect("static template is valid"),
            );
            bar.set_prefix(name);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        EntityProgress {
            name,
            bar,
            pages: 0,
            rows: 0,
        }
    }
}

/// Progress of one entity.
pub struct EntityProgress {
    name: &'static str,
    bar: Option<ProgressBar>,
    pages: u64,
    rows: u64,
}

impl EntityProgress {
    /// Starts from a resumed state.
    pub fn resume(&self, rows: u64, pages: u64) {
        if rows > 0 {
            tracing::info!(entity = self.name, rows, pages, "Resuming from checkpoint");
        }
        if let Some(bar) = &self.bar {
            bar.set_position(rows);
        }
    }

    /// One page read.
    pub fn page(&mut self, rows: u64) {
        self.pages += 1;
        self.rows += rows;
        match &self.bar {
            Some(bar) => {
                bar.inc(rows);
                bar.set_message(format!("{} pages", self.pages));
            }
            None if self.pages.is_multiple_of(50) => {
                tracing::info!(
                    entity = self.name,
                    rows = self.rows,
                    pages = self.pages,
                    "Reading"
                );
            }
            None => {}
        }
    }

    /// The entity is complete.
    pub fn finish(&self, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_with_message("done");
        }
        tracing::info!(entity = self.name, rows, "Entity read");
    }
}

//! The threads that do the database's blocking work: a fixed set, one per pooled
//! connection, started with the first query and kept for the life of the [`super::Db`].
//!
//! Why not actix's blocking pool (`web::block`): each worker's runtime has a pool of its own
//! that grows with that worker's peak and whose threads come and go after 10 s idle, so a
//! node ran two to three times as many database threads as it has connections, each with
//! the allocator's per-thread pages of every size it ever used (docs/benchmarks.md, "Memory
//! under churn"). A fixed set keeps that memory, and the thread count, flat.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

/// One piece of blocking work; it sends its own result.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of named threads taking jobs from one queue.
pub(super) struct Threads {
    n: usize,
    /// Started at the first job (a CLI command that never queries starts none).
    queue: OnceLock<Option<Sender<Job>>>,
}

impl Threads {
    /// `n` threads (at least one), not started yet.
    pub(super) fn new(n: usize) -> Self {
        Threads {
            n: n.max(1),
            queue: OnceLock::new(),
        }
    }

    /// Queues `job`; gives it back when no thread could be started. The caller bounds what
    /// is queued (one job per pooled connection, see `Db::run`), so the queue is short.
    pub(super) fn submit(&self, job: Job) -> Result<(), Job> {
        match self.queue.get_or_init(|| self.start()) {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    fn start(&self) -> Option<Sender<Job>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..self.n {
            let rx = rx.clone();
            match std::thread::Builder::new()
                .name(format!("db-{i}"))
                .spawn(move || work(&rx))
            {
                Ok(_) => started += 1,
                Err(e) => log::error!("cannot start database thread db-{i}: {e}"),
            }
        }
        (started > 0).then_some(tx)
    }
}

/// Runs jobs until every sender is gone. A job that panics is dropped (its caller sees its
/// result channel closed); the thread goes on.
fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            log::error!("a database job panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::mpsc::channel;

    #[test]
    fn jobs_run_on_at_most_n_threads_and_a_panic_spares_the_thread() {
        let threads = Threads::new(2);
        let (tx, rx) = channel();
        let boom: Job = Box::new(|| panic!("boom"));
        assert!(threads.submit(boom).is_ok());
        for _ in 0..50 {
            let tx = tx.clone();
            let job: Job = Box::new(move || {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = tx.send(name);
            });
            assert!(threads.submit(job).is_ok());
        }
        let names: HashSet<Option<String>> = (0..50)
            .map(|_| {
                rx.recv_timeout(std::time::Duration::from_secs(5))
                    .expect("ran")
            })
            .collect();
        assert!(names.len() <= 2, "{names:?}");
        assert!(names
            .iter()
            .all(|n| n.as_deref().is_some_and(|n| n.starts_with("db-"))));
    }
}

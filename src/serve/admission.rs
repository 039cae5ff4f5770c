//! Overload and time: how much search work is let in, and how long it may take.
//!
//! Owns the bounded queue in front of inference. A request takes a queue place at once or is shed
//! with 503 and `Retry-After`; then it waits for one of a few running places, and only then starts
//! its blocking work, so a request whose client went away while waiting is dropped before it cost
//! anything. Every admitted request has a deadline (504 when it passes).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::error::{ServeError, ServeResult};
use crate::error::Result;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests queued or running at once; beyond this, 503 at once.
    pub queue: usize,
    /// Requests whose work runs at once (the model batches what runs together).
    pub running: usize,
    pub deadline: Duration,
}

impl Default for Limits {
    /// 64 queued lets 32 steady clients through with room to spare; 32 running keeps the model's
    /// batches of up to 32 questions (16 cost 10–15% of throughput under wrk); 10 s is far beyond
    /// a healthy answer (about 20 ms).
    fn default() -> Self {
        Limits {
            queue: 64,
            running: 32,
            deadline: Duration::from_secs(10),
        }
    }
}

pub struct Admission {
    limits: Limits,
    queue: Arc<Semaphore>,
    running: Arc<Semaphore>,
    pub shed: AtomicU64,
    pub timed_out: AtomicU64,
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            queue: Arc::new(Semaphore::new(limits.queue.max(1))),
            running: Arc::new(Semaphore::new(limits.running.max(1))),
            shed: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Requests queued or running now.
    pub fn depth(&self) -> usize {
        self.limits.queue.max(1) - self.queue.available_permits()
    }

    /// Run `work` on a blocking thread if there is room, within the deadline.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> ServeResult<T> {
        let Ok(_queued) = self.queue.clone().try_acquire_owned() else {
            self.shed.fetch_add(1, Ordering::Relaxed);
            return Err(ServeError::Overloaded {
                queued: self.limits.queue,
                retry_after_s: 1,
            });
        };
        let running = self.running.clone();
        let answer = async move {
            let _running = running.acquire_owned().await.expect("semaphore open");
            let result = tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| ServeError::Worker(e.to_string()))?;
            result.map_err(ServeError::from)
        };
        self.within_deadline(answer).await
    }

    async fn within_deadline<T>(
        &self,
        answer: impl Future<Output = ServeResult<T>>,
    ) -> ServeResult<T> {
        match tokio::time::timeout(self.limits.deadline, answer).await {
            Ok(result) => result,
            Err(_) => {
                self.timed_out.fetch_add(1, Ordering::Relaxed);
                Err(ServeError::Deadline {
                    after: self.limits.deadline,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_queue_is_shed_at_once_and_slow_work_times_out() {
        let admission = Arc::new(Admission::new(Limits {
            queue: 1,
            running: 1,
            deadline: Duration::from_millis(200),
        }));
        let slow = {
            let a = admission.clone();
            tokio::spawn(async move {
                a.run(|| {
                    std::thread::sleep(Duration::from_millis(400));
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(admission.depth(), 1);
        let shed = admission.run(|| Ok(())).await.unwrap_err();
        assert!(matches!(shed, ServeError::Overloaded { .. }), "{shed}");
        let late = slow.await.unwrap().unwrap_err();
        assert!(matches!(late, ServeError::Deadline { .. }), "{late}");
        assert_eq!(admission.shed.load(Ordering::Relaxed), 1);
        assert_eq!(admission.timed_out.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn work_for_a_client_that_left_while_waiting_never_runs() {
        use std::sync::atomic::AtomicUsize;
        let admission = Arc::new(Admission::new(Limits {
            queue: 4,
            running: 1,
            deadline: Duration::from_secs(5),
        }));
        let ran = Arc::new(AtomicUsize::new(0));
        let busy = {
            let a = admission.clone();
            tokio::spawn(async move {
                a.run(|| {
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = {
            let (a, ran) = (admission.clone(), ran.clone());
            tokio::spawn(async move {
                a.run(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        waiting.abort(); // the client went away while its request waited for a running place
        busy.await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(admission.depth(), 0, "its queue place was given back");
    }
}

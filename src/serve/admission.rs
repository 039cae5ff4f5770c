//! Overload and time: how much search work is let in, and how long it may take.
//!
//! Owns the bounded queue in front of inference. A request takes a queue place at once or is shed
//! with 503 and `Retry-After`; then it waits for one of a few running places, and only then starts
//! its blocking work, so a request whose client went away while waiting is dropped before it cost
//! anything. Every admitted request has a deadline (504 when it passes).
//!
//! Also the share of one client (by address): at most half the running places at once, so one
//! client cannot take every running place; its further requests wait their turn (within the
//! deadline), and beyond as many again waiting it is refused with 429.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::AppState;
use crate::sync::Recover;

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
    /// Per client address: (places in flight, running places).
    clients: Mutex<HashMap<IpAddr, (Arc<Semaphore>, Arc<Semaphore>)>>,
    pub shed: AtomicU64,
    pub timed_out: AtomicU64,
}

/// One client's places, held while its request is in flight.
pub struct ClientPlaces {
    _in_flight: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            queue: Arc::new(Semaphore::new(limits.queue.max(1))),
            running: Arc::new(Semaphore::new(limits.running.max(1))),
            clients: Mutex::new(HashMap::new()),
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

    /// Running places one client may hold at once: half of all.
    pub fn per_client(&self) -> usize {
        (self.limits.running / 2).max(1)
    }

    /// This client's semaphores (made on first use; forgotten when nobody holds them).
    fn client(&self, client: IpAddr) -> (Arc<Semaphore>, Arc<Semaphore>) {
        let share = self.per_client();
        let mut clients = self.clients.lock_recovered();
        if clients.len() > 4096 {
            clients.retain(|_, (f, _)| Arc::strong_count(f) > 1);
        }
        clients
            .entry(client)
            .or_insert_with(|| {
                (
                    Arc::new(Semaphore::new(2 * share)),
                    Arc::new(Semaphore::new(share)),
                )
            })
            .clone()
    }

    /// A place for one more request of `client`: at once when it has fewer than its share
    /// running, after a wait (within the deadline) when it has more waiting, 429 beyond.
    pub async fn client_places(&self, client: IpAddr) -> Result<ClientPlaces, ServeError> {
        let (in_flight, running) = self.client(client);
        let Ok(in_flight) = in_flight.try_acquire_owned() else {
            self.shed.fetch_add(1, Ordering::Relaxed);
            return Err(ServeError::TooManyFromClient {
                limit: 2 * self.per_client(),
            });
        };
        let running =
            match tokio::time::timeout(self.limits.deadline, running.acquire_owned()).await {
                Ok(permit) => permit.expect("semaphore open"),
                Err(_) => {
                    self.timed_out.fetch_add(1, Ordering::Relaxed);
                    return Err(ServeError::Deadline {
                        after: self.limits.deadline,
                    });
                }
            };
        Ok(ClientPlaces {
            _in_flight: in_flight,
            _running: running,
        })
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

/// The per-client share, for the routes that run searches (`/v1/search`, MCP's POSTs). A request
/// without a peer address (an in-process router) is not counted.
pub async fn client_share(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let searches = request.uri().path() == "/v1/search"
        || (request.uri().path().starts_with("/mcp")
            && request.method() == axum::http::Method::POST);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (true, Some(peer)) = (searches, peer) else {
        return next.run(request).await;
    };
    match state.admission.client_places(peer).await {
        Ok(_places) => next.run(request).await,
        Err(e) => ApiError(e).into_response(),
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

//! One policy for poisoned locks: recover. A lock is poisoned when a thread panicked while holding
//! it; podseek's critical sections only replace or push whole values (a cache entry, a job's
//! state, a progress bar, a pool's item), so what a panicking holder left is still a valid value,
//! and one failed request must not turn every later one into a panic.
//!
//! Not here: the pools and queues themselves (`pool.rs`, `serve::admission`).

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub trait Recover<T: ?Sized> {
    fn lock_recovered(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Recover<T> for Mutex<T> {
    fn lock_recovered(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub trait RecoverRw<T: ?Sized> {
    fn read_recovered(&self) -> RwLockReadGuard<'_, T>;
    fn write_recovered(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RecoverRw<T> for RwLock<T> {
    fn read_recovered(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_recovered(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

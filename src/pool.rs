//! A fixed set of reusable resources (inference sessions, search slots) shared by concurrent
//! callers: each caller takes one, uses it, and gives it back; callers beyond the pool size wait.
//! Never fails for lack of a slot, never shrinks (a panicking caller still returns its item).
use crate::sync::Recover;
use std::sync::{Condvar, Mutex};

pub struct Pool<T> {
    items: Mutex<Vec<T>>,
    available: Condvar,
    size: usize,
}

impl<T> Pool<T> {
    pub fn new(items: Vec<T>) -> Pool<T> {
        let size = items.len();
        Pool {
            items: Mutex::new(items),
            available: Condvar::new(),
            size,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut item = {
            let mut items = self.items.lock_recovered();
            loop {
                if let Some(item) = items.pop() {
                    break item;
                }
                items = self
                    .available
                    .wait(items)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        // Give the session back even if `f` panics, so the pool never shrinks.
        struct Return<'a, T> {
            pool: &'a Pool<T>,
            item: Option<T>,
        }
        impl<T> Drop for Return<'_, T> {
            fn drop(&mut self) {
                if let Some(item) = self.item.take() {
                    self.pool.items.lock_recovered().push(item);
                    self.pool.available.notify_one();
                }
            }
        }
        let mut guard = Return {
            pool: self,
            item: None,
        };
        let result = f(&mut item);
        guard.item = Some(item);
        result
    }
}

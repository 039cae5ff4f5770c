//! A column of plain little-endian numbers (chunk keys, dictionary codes, f32 vector rows), held
//! in memory or read in place from a mapped file, so that opening a segment does not copy what
//! grows with it.
//!
//! Also the one place segment files are mapped (`map_file`). Not here: what the columns mean
//! (`table.rs`, and `store.rs` for the rows).

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

#[cfg(target_endian = "big")]
compile_error!("chunks.tbl and vectors.f32 are little-endian and mapped as is");

/// Map a segment or generation file read-only.
pub fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    // SAFETY: segment and generation files are never written after their switch, so the mapping
    // cannot change under us; a clean-up that unlinks the file leaves the mapping valid.
    unsafe { memmap2::Mmap::map(&file) }.map_err(Error::io(path))
}

/// Numbers every bit pattern of which is a valid value (`bytemuck::Pod`), so a mapped byte range
/// can be read as them.
pub trait Plain: bytemuck::Pod + Send + Sync {}
impl<T: bytemuck::Pod + Send + Sync> Plain for T {}

#[derive(Clone)]
pub enum Column<T: Plain> {
    Owned(Arc<[T]>),
    /// `len` values from byte `offset` of the map, which is aligned for `T`.
    Mapped {
        map: Arc<memmap2::Mmap>,
        offset: usize,
        len: usize,
    },
}

impl<T: Plain> Column<T> {
    /// `len` values at byte `offset` of `map`; `None` when the range does not fit in the map or is
    /// not aligned for `T`.
    pub fn mapped(map: &Arc<memmap2::Mmap>, offset: usize, len: usize) -> Option<Column<T>> {
        let size = std::mem::size_of::<T>();
        let end = len.checked_mul(size)?.checked_add(offset)?;
        // A mapping starts on a page boundary, so the offset alone decides the alignment.
        if end > map.len() || offset % std::mem::align_of::<T>() != 0 {
            return None;
        }
        Some(Column::Mapped {
            map: Arc::clone(map),
            offset,
            len,
        })
    }
}

impl<T: Plain> Deref for Column<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Column::Owned(values) => values,
            // `mapped` checked the range and its alignment, so the cast cannot fail.
            Column::Mapped { map, offset, len } => {
                bytemuck::cast_slice(&map[*offset..*offset + *len * std::mem::size_of::<T>()])
            }
        }
    }
}

impl<T: Plain> From<Vec<T>> for Column<T> {
    fn from(values: Vec<T>) -> Column<T> {
        Column::Owned(values.into())
    }
}

impl<T: Plain> FromIterator<T> for Column<T> {
    fn from_iter<I: IntoIterator<Item = T>>(values: I) -> Column<T> {
        Column::Owned(values.into_iter().collect())
    }
}

impl<T: Plain> std::fmt::Debug for Column<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Column::Owned(_) => "owned",
            Column::Mapped { .. } => "mapped",
        };
        write!(f, "Column({} values, {kind})", self.len())
    }
}

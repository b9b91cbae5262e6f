//! The heap of a parser built for `wasm32-unknown-unknown`: a bump allocator.
//!
//! Every webhook runs in a fresh instance that is thrown away afterwards, so memory never needs
//! to be handed back: allocating is moving a pointer. The general-purpose allocator Rust's
//! standard library brings to this target instead takes each new region from `memory.grow`,
//! outside the memory the host's instance pool keeps ready, and a grown page costs the host a
//! page fault and a reset per request (BENCHMARKS.md measures the difference). The space between
//! the end of the parser's static data and the end of its initial memory is used first.
//!
//! Freeing or growing the most recent allocation happens in place, so a string or vector built
//! by pushing does not leave copies of itself behind.

#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::Cell;
use core::ptr;

const PAGE: usize = 65_536;

unsafe extern "C" {
    /// Where the linker put the end of the static data: the first free byte.
    static __heap_base: u8;
}

/// The allocator: the first free byte, or 0 before the first allocation.
pub struct BumpHeap {
    next: Cell<usize>,
}

// SAFETY: `wasm32-unknown-unknown` parsers are single-threaded; the host never shares an
// instance between threads.
unsafe impl Sync for BumpHeap {}

impl BumpHeap {
    /// A heap that starts at `__heap_base` on first use.
    pub const fn new() -> Self {
        Self { next: Cell::new(0) }
    }

    fn next(&self) -> usize {
        match self.next.get() {
            0 => &raw const __heap_base as usize,
            next => next,
        }
    }

    /// Makes `[.., end)` addressable, growing the memory when it does not reach that far.
    fn reserve(end: usize) -> bool {
        let size = wasm32::memory_size(0) * PAGE;
        if end <= size {
            return true;
        }
        let pages = (end - size).div_ceil(PAGE);
        wasm32::memory_grow(0, pages) != usize::MAX
    }
}

impl Default for BumpHeap {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out lies in linear memory above the static data, is aligned as
// asked, and no two live blocks overlap (the pointer only moves back over the block just freed).
unsafe impl GlobalAlloc for BumpHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let start = self.next().next_multiple_of(layout.align());
        match start.checked_add(layout.size()) {
            Some(end) if Self::reserve(end) => {
                self.next.set(end);
                start as *mut u8
            }
            _ => ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if block as usize + layout.size() == self.next() {
            self.next.set(block as usize);
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = block as usize;
        if start + layout.size() == self.next() {
            return match start.checked_add(new_size) {
                Some(end) if Self::reserve(end) => {
                    self.next.set(end);
                    block
                }
                _ => ptr::null_mut(),
            };
        }
        if new_size <= layout.size() {
            return block;
        }
        // SAFETY: the caller's layout with the new size is valid (GlobalAlloc's contract).
        let moved =
            unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !moved.is_null() {
            // SAFETY: both blocks are live, distinct and at least `layout.size()` long.
            unsafe { ptr::copy_nonoverlapping(block, moved, layout.size()) };
        }
        moved
    }
}

//! The OpenIOC reader and the compiler together: any bytes are read as an
//! IOC file, and what loads is compiled under a small budget. Besides "no
//! panic", it checks that compiling stays within the budget it was given:
//! the cost charged is within it, and so are the bytes actually allocated
//! while compiling (a counting allocator measures the peak).
#![no_main]
use ioc_scan::eval::{CompileBudget, CompiledCollection};
use ioc_scan::openioc;
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Small enough that the fuzzer reaches it with inputs of a few kilobytes.
const BUDGET: CompileBudget = CompileBudget { work: 200_000, memory: 8 << 20 };

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = openioc::parse_bytes("fuzz.ioc", data) else { return };
    // The same IOC several times: the budget is the collection's.
    let iocs = vec![parsed.ioc; 3];
    let before = CURRENT.load(Relaxed);
    PEAK.store(before, Relaxed);
    let (compiled, diagnostics) = CompiledCollection::compile_with_budget(&iocs, BUDGET);
    let allocated = PEAK.load(Relaxed) - before;
    let cost = compiled.cost();
    assert!(cost.work <= BUDGET.work, "work {} over the budget {}", cost.work, BUDGET.work);
    assert!(cost.memory <= BUDGET.memory, "memory {} over the budget {}", cost.memory, BUDGET.memory);
    assert!(
        allocated as u64 <= BUDGET.memory,
        "compiling allocated {allocated} bytes at its peak, over the budget {} (charged {})",
        BUDGET.memory,
        cost.memory
    );
    for d in &diagnostics {
        let _ = d.to_string();
    }
    let _ = compiled.matcher();
});

//! rtdash facade (being written).
pub use rtdash_core as core;
pub use rtdash_fanout as fanout;
pub use rtdash_window as window;

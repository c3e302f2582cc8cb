//! rtdash-transport (being written).

//! rtdash-window (being written).

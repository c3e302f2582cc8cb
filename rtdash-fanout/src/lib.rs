//! rtdash-fanout (being written).

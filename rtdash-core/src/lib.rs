//! rtdash-core (being written).

//! gyre's benchmark programs; see `src/bin/`.

#![forbid(unsafe_code)]

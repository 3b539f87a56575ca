//! JSON as index-lock reads and writes it: validation positions, a text-preserving tree, patches.

mod position;

pub use position::{error_position, ErrorPosition};

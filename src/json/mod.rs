//! JSON as index-lock reads and writes it: validation, a text-preserving tree, pointers, patches.

mod equal;
mod format;
mod merge;
mod parse;
mod patch;
mod pointer;
mod position;
mod text;
mod value;

pub use equal::equal;
pub use format::format;
pub use merge::apply_merge;
pub use parse::{parse, ParseError, MAX_DEPTH};
pub use patch::{apply_patch, parse_patch, Operation, PatchFailure, PatchShapeError};
pub use pointer::{get, get_mut, Pointer};
pub use position::{error_position, ErrorPosition};
pub use text::escape;
pub use value::{Object, Value};

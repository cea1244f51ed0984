pub mod diag;
pub mod live;
pub mod scenario;
pub mod stack;

pub mod scenario;
pub mod stack;

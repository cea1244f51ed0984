pub mod live;
pub mod scenario;
pub mod stack;

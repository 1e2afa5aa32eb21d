pub mod c_api;
pub mod cargo_env;
pub mod redis_cluster;
pub mod redis_sentinel;
pub mod redis_server;
pub mod temp;

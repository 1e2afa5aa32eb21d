pub mod c_api;
pub mod redis_server;
pub mod temp;

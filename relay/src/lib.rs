//! # eyeward-relay
//!
//! The relay server: accounts and sessions, storage, the JSON API and web pages; later live
//! video (RTSP → WebRTC), the agents' link, alert mail and dispatch. `main.rs` is a thin
//! wrapper over [`cli::main`]; tests start the server in-process with [`http::run`].

pub mod admin;
pub mod auth;
pub mod backup;
pub mod check_config;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod fanout;
pub mod housekeeping;
pub mod http;
pub mod ingest;
pub mod link;
pub mod loopback;
pub mod mail;
pub mod metrics;
pub mod objects;
pub mod ptz;
pub mod push;
pub mod revocation;
pub mod store;
pub mod talk;
pub mod task;
pub mod transcode;
pub mod whep;

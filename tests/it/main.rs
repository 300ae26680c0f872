//! subinterp's integration tests: one binary, a module per area.
//!
//! The C guests come from `make guest` (target/guest/*.wasm); `make test`
//! builds them first.

mod abi;
mod cache;
mod calls;
mod channels;
mod cli;
mod common;
mod encoding;
mod hardening;
mod hostfns;
mod hostile;
mod interpreters;
mod js;
mod js_batch;
mod js_child_dirs;
mod js_fs;
mod js_loop;
mod js_meta;
mod layers;
mod nats;
mod nats_channel;
mod nats_exact;
mod nats_remote;
mod python;
mod wait;
mod web;

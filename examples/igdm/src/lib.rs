//! `igdm`: the reference service of the igdm SDK, as a library.
//!
//! The binary (`igdm`) is the command line; this library holds the reference service
//! ([`service`]) so that the command line, the demo, the end-to-end tests and the benchmarks can
//! start it in-process: [`service::Service::start`].

pub mod service;

//! podseek's integration tests: one binary, shared fixtures (the real models, a real index of the
//! bundled corpus built once per run, real servers on loopback, a real MCP client, a real browser).

mod fixtures;

mod corpus;
mod embed;
mod eval;
mod feeds;
mod hear;
mod http;
mod index;
mod mcp;
mod page;
mod search;
mod service;
mod store;
mod translate;

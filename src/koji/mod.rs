//! nodeimg's koji client: XML-RPC sessions (`session`, `xmlrpc`), koji's client
//! configuration (`config`), resumable fast uploads (`upload`) and content-generator
//! import of a build (`cg`).

pub mod cg;
pub mod config;
pub mod imgdata;
pub mod kerberos;
pub mod session;
pub mod upload;
pub mod xmlrpc;

use anyhow::Result;
use dxr::Value;

/// A command-line argument as an XML-RPC value: JSON when it parses as JSON (numbers,
/// `null`, lists, objects, quoted strings), else the text itself as a string.
pub fn value_from_arg(arg: &str) -> Result<Value> {
    let json =
        serde_json::from_str(arg).unwrap_or_else(|_| serde_json::Value::String(arg.to_owned()));
    xmlrpc::from_json(&json).map_err(anyhow::Error::msg)
}

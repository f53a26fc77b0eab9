//! A storage-agnostic rule engine for Instagram DM and comment automation.
